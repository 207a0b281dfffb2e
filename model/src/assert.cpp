#include "faultline/model/assert.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace faultline {
namespace {

void abort_handler(const char* expression, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: FAULTLINE_ASSERT(%s) failed\n", file, line, expression);
    std::fflush(stderr);
    std::abort();
}

std::atomic<AssertHandler> installed_handler{&abort_handler};

}  // namespace

AssertHandler set_assert_handler(AssertHandler handler) noexcept {
    return installed_handler.exchange(handler != nullptr ? handler : &abort_handler);
}

void assert_failed(const char* expression, const char* file, int line) {
    installed_handler.load()(expression, file, line);
    std::abort();
}

}  // namespace faultline
