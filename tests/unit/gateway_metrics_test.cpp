// Which of a worker's shared counters an upstream attempt lands in.
#include "app/gateway/gateway.hpp"
#include "app/gateway/shared_state.hpp"

#include <agente/config.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <toml++/toml.h>

namespace agente::gateway {
namespace {

struct CountersFixture : ::testing::Test {
    Config config = [] {
        Config c;
        c.app = std::make_shared<toml::table>(toml::parse(
            "[providers.a]\nbase_url = \"http://127.0.0.1:9\"\n"
            "[providers.b]\nbase_url = \"http://127.0.0.1:9\"\n"
            "[models.\"one\"]\ntargets = [{ provider = \"a\", model = \"m1\" }]\n"
            "[models.\"two\"]\ntargets = [{ provider = \"a\", model = \"m2\" }, { provider = \"b\", model = \"m3\" }]\n",
            std::string_view("server.conf")));
        c.app_source = "server.conf";
        return c;
    }();
    asio::io_context io;
    SharedLayout layout{1};
    SharedState shared = declare_shared_state(layout);
    PrivateMemory memory{layout};
    std::shared_ptr<Gateway> gw = [this] {
        assign_breaker_cells(*shared.breakers, load_gateway_settings(*config.app, config.app_source));
        return make_gateway(io.get_executor(), config, shared, 0);
    }();
};

TEST_F(CountersFixture, EachTargetOfEachModelHasItsOwnCells) {
    const ModelSettings& one = *gw->settings.model("one");
    const ModelSettings& two = *gw->settings.model("two");
    EXPECT_NE(gw->cells_of(one, one.targets[0]), gw->cells_of(two, two.targets[0]));
    EXPECT_NE(gw->cells_of(two, two.targets[0]), gw->cells_of(two, two.targets[1]));
    EXPECT_EQ(gw->cells_of(two, two.targets[1]), &gw->counters->upstreams[shared.upstream_names->find(upstream_key("b", "m3"))]);
}

// The embedder keeps a copy of its model's settings (a reload may replace the gateway's): its
// attempts count under the same target as a route's, never at an address computed from the copy's.
TEST_F(CountersFixture, AModelCopiedOutOfTheSettingsCountsUnderTheSameTarget) {
    const ModelSettings& two = *gw->settings.model("two");
    ModelSettings copy = two;
    EXPECT_EQ(gw->cells_of(copy, copy.targets[1]), gw->cells_of(two, two.targets[1]));
    EXPECT_EQ(gw->cells_of(copy, copy.targets[0]), gw->cells_of(two, two.targets[0]));
}

}  // namespace
}  // namespace agente::gateway
