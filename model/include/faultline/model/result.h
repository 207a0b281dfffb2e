// Result<T>: a value or a std::error_code, for operations beneath the .NET-shaped surface.
#pragma once

#include <system_error>
#include <utility>
#include <variant>

#include "faultline/model/assert.h"

namespace faultline::model {

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
    Result(std::error_code error) : state_(std::in_place_index<1>, error) {  // NOLINT: implicit
        FAULTLINE_ASSERT(static_cast<bool>(error));
    }
    template <typename E>
        requires std::is_error_code_enum_v<E>
    Result(E error) : Result(make_error_code(error)) {}  // NOLINT: implicit

    [[nodiscard]] bool has_value() const { return state_.index() == 0; }
    explicit operator bool() const { return has_value(); }
    [[nodiscard]] T& value() {
        FAULTLINE_ASSERT(has_value());
        return std::get<0>(state_);
    }
    [[nodiscard]] const T& value() const {
        FAULTLINE_ASSERT(has_value());
        return std::get<0>(state_);
    }
    [[nodiscard]] std::error_code error() const {
        return has_value() ? std::error_code{} : std::get<1>(state_);
    }

private:
    std::variant<T, std::error_code> state_;
};

}  // namespace faultline::model
