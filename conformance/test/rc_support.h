// Helpers for RapidCheck properties that run on real sockets.
#pragma once

#include <rapidcheck.h>

#include <exception>
#include <iostream>
#include <string_view>

namespace faultline::test {

/// Runs a property's checks and, when one fails, prints its own description (with `context`,
/// the case in words) to stderr at once. RapidCheck re-runs a failing case to describe it: a case
/// on real sockets that fails once and passes on the re-run would otherwise be reported as a
/// failure whose text is the re-run's "no exceptions thrown", losing which check fired.
template <typename Body>
void report_failure_as_it_happens(std::string_view context, Body&& body) {
    try {
        body();
    } catch (const rc::detail::CaseResult& result) {
        if (result.type == rc::detail::CaseResult::Type::Failure) {
            std::cerr << "[property case failed; as it happened]\n"
                      << context << "\n"
                      << result.description << "\n";
        }
        throw;
    } catch (const std::exception& e) {
        std::cerr << "[property case threw; as it happened]\n"
                  << context << "\n"
                  << e.what() << "\n";
        throw;
    }
}

}  // namespace faultline::test
