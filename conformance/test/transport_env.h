// The two environments every typed suite runs under: the simulated World ("Sim") and real
// loopback ("Real"). `run` executes a test body on a logical thread of the transport and waits for
// it with a bound; the "Sim"/"Real" test names give ctest its sim/real labels.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>

#include "faultline/real/transport.h"
#include "faultline/sim/world.h"

namespace faultline::test {

struct SimEnv {
    using T = sim::World;
    static constexpr bool is_sim = true;
    sim::World transport{sim::World::Options{}};
    void run(const std::function<void()>& body) {
        transport.spawn("test", body);
        ASSERT_TRUE(transport.run_until_idle());
    }
};

struct RealEnv {
    using T = real::RealTransport;
    static constexpr bool is_sim = false;
    real::RealTransport transport;
    void run(const std::function<void()>& body) {
        transport.spawn("test", body);
        ASSERT_TRUE(transport.join_threads(std::chrono::seconds(30)));
        ASSERT_EQ(transport.take_exception(), nullptr);
    }
};

/// Names the typed instantiations "Sim" and "Real".
struct EnvNames {
    template <typename Env>
    static std::string GetName(int /*index*/) {
        return Env::is_sim ? "Sim" : "Real";
    }
};

using Environments = testing::Types<SimEnv, RealEnv>;

}  // namespace faultline::test
