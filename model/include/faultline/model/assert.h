// FAULTLINE_ASSERT: checks programmer errors (broken caller, Transport or state-machine contracts),
// on in every build. Never used for what a peer or the network can cause. The handler is
// swappable: the default aborts; conformance installs one that throws so RapidCheck can shrink.
#pragma once

namespace faultline {

using AssertHandler = void (*)(const char* expression, const char* file, int line);

/// Installs `handler` (nullptr restores the aborting default) and returns the previous one.
AssertHandler set_assert_handler(AssertHandler handler) noexcept;

/// Calls the installed handler. If the handler returns, the process aborts.
[[noreturn]] void assert_failed(const char* expression, const char* file, int line);

}  // namespace faultline

#define FAULTLINE_ASSERT(condition)                                   \
    do {                                                              \
        if (!(condition)) {                                           \
            ::faultline::assert_failed(#condition, __FILE__, __LINE__); \
        }                                                             \
    } while (false)
