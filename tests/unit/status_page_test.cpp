// GET /status's page: what it escapes, what it shows (the core's workers from the scoreboard, the
// gateway's breakers, streams, providers and models) and that it refers to nothing outside itself.
#include "app/gateway/gateway.hpp"
#include "app/gateway/shared_state.hpp"
#include "core/core_metrics.hpp"
#include "core/scoreboard.hpp"
#include "core/status_route.hpp"

#include <agente/config.hpp>
#include <agente/secret.hpp>
#include <agente/status.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <cstdlib>

using namespace agente;

namespace {

bool has(const std::string& page, std::string_view part) { return page.find(part) != std::string::npos; }

}  // namespace

TEST(StatusPage, EscapesEveryTextAsDataAndAsAttribute) {
    EXPECT_EQ(StatusPage::escape(R"(<b a="1" c='2'>&amp;</b>)"),
              "&lt;b a=&quot;1&quot; c=&#39;2&#39;&gt;&amp;amp;&lt;/b&gt;");
    StatusPage page;
    page.section("<h1>");
    page.note("a & b");
    page.table({"<th>"});
    StatusAction action{"Re<set", "/p/\"", "x' onclick='alert(1)"};
    page.row({"<script>alert(1)</script>"}, &action);
    std::string html = page.finish("t<itle", 5);
    EXPECT_TRUE(has(html, "<h2>&lt;h1&gt;</h2>"));
    EXPECT_TRUE(has(html, "<p>a &amp; b</p>"));
    EXPECT_TRUE(has(html, "<th>&lt;th&gt;</th>"));
    EXPECT_TRUE(has(html, "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    EXPECT_TRUE(has(html, R"x(data-path="/p/&quot;" data-arg="x&#39; onclick=&#39;alert(1)">Re&lt;set</button>)x"));
    EXPECT_TRUE(has(html, "<title>t&lt;itle</title>"));
    EXPECT_FALSE(has(html, "<script>alert"));
    EXPECT_FALSE(has(html, "onclick='"));
}

TEST(StatusPage, IsOneSelfContainedDocumentThatRefreshesAndFitsAPhone) {
    StatusPage page;
    page.section("s");
    std::string html = page.finish("t", 7);
    EXPECT_TRUE(has(html, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    EXPECT_TRUE(has(html, "<meta http-equiv=\"refresh\" content=\"7\">"));
    EXPECT_TRUE(has(html, "<style>"));
    EXPECT_TRUE(has(html, "<script>"));
    // No external asset: no src=, href= or url() anywhere, no absolute URL.
    for (std::string_view banned : {"src=", "href=", "url(", "http://", "https://", "//cdn"}) EXPECT_FALSE(has(html, banned)) << banned;
    EXPECT_TRUE(has(std::string(StatusPage::content_security_policy), "default-src 'none'"));
    // Tables are closed before the next section and at the end.
    StatusPage two;
    two.table({"a"});
    two.row({"1"});
    two.section("b");
    two.table({"c"});
    std::string t = two.finish("x", 5);
    EXPECT_TRUE(has(t, "</tbody></table></div>\n<h2>b</h2>"));
    EXPECT_TRUE(has(t, "</tbody></table></div>\n<p>This page reloads"));
}

// A browser's own login prompt sends the admin token as Basic auth's password (any user name).
TEST(StatusPage, TheAdminTokenAsABasicAuthPassword) {
    EXPECT_EQ(basic_password("Basic YWRtaW46czNjcjN0"), "s3cr3t");              // admin:s3cr3t
    EXPECT_EQ(basic_password("basic   YWRtaW46czNjcjN0  "), "s3cr3t");
    EXPECT_EQ(basic_password("Basic OmE6Yg=="), "a:b");                          // ":a:b": the first colon splits
    EXPECT_EQ(basic_password("Basic YTo="), "");                                 // "a:": no password
    EXPECT_EQ(basic_password("Basic YWRtaW4="), "");                             // no colon
    EXPECT_EQ(basic_password("Basic YWRtaW46czNjcjN0x"), "");                    // not whole quads
    EXPECT_EQ(basic_password("Basic !!!!"), "");
    EXPECT_EQ(basic_password("Bearer YWRtaW46czNjcjN0"), "");
    EXPECT_EQ(basic_password("BasicYWRtaW46czNjcjN0"), "");
    EXPECT_EQ(basic_password(""), "");
}

TEST(StatusPage, DurationsAndSizesAsAPersonReadsThem) {
    EXPECT_EQ(human_duration(-3), "0s");
    EXPECT_EQ(human_duration(42), "42s");
    EXPECT_EQ(human_duration(187), "3m 7s");
    EXPECT_EQ(human_duration(5 * 3600 + 120 + 5), "5h 2m");
    EXPECT_EQ(human_duration(3 * 86400 + 4 * 3600), "3d 4h");
    EXPECT_EQ(human_bytes(812), "812 B");
    EXPECT_EQ(human_bytes(3565158), "3.4 MiB");
    EXPECT_EQ(human_bytes(2ull << 30), "2.0 GiB");
}

namespace agente::core {

TEST(CoreStatus, ListsEveryLiveWorkerFromTheScoreboardAsMetricsReadsIt) {
    SharedLayout layout{max_worker_slots};
    Scoreboard scoreboard{layout};
    CoreMetrics metrics{layout};
    scoreboard.create();
    std::int64_t now = monotonic_ns();
    int a = scoreboard.claim(4242, 3);
    int b = scoreboard.claim(4343, 3);
    int d = scoreboard.claim_dirty(5151, 3);
    scoreboard.slot(a).state = std::uint32_t(WorkerState::ready);
    scoreboard.slot(a).requests = 17;
    scoreboard.slot(a).started_ns = now - 125'000'000'000;
    scoreboard.slot(a).memory_bytes = 3565158;
    scoreboard.slot(b).state = std::uint32_t(WorkerState::draining);
    scoreboard.slot(d).state = std::uint32_t(WorkerState::ready);
    metrics.supervision().generation = 3;
    metrics.supervision().started_unix = 1000;
    metrics.supervision().reloads_applied = 2;

    auto workers = live_workers(scoreboard);
    ASSERT_EQ(workers.size(), 3u);
    EXPECT_EQ(workers[0].pid, 4242);
    EXPECT_EQ(workers[2].pool, Pool::dirty);

    StatusPage page;
    write_core_status(page, metrics, scoreboard, now, 1000 + 3 * 3600);
    std::string html = page.finish("s", 5);
    EXPECT_TRUE(has(html, "<td>3</td><td>3h 0m</td><td>2 applied, 0 refused</td><td>2</td><td>1</td>")) << html;
    EXPECT_TRUE(has(html, "<td>4242</td><td>3</td><td>ready</td><td>2m 5s</td><td>17</td><td>0</td><td>0</td><td>3.4 MiB</td>"))
        << html;
    EXPECT_TRUE(has(html, "<td>4343</td><td>3</td><td>draining</td>")) << html;
    EXPECT_TRUE(has(html, "<td>5151</td><td>3</td><td>ready</td>")) << html;
    EXPECT_FALSE(has(html, "No dirty worker"));
    // A released slot is gone from the page.
    scoreboard.release(d);
    StatusPage again;
    write_core_status(again, metrics, scoreboard, now, 1000);
    EXPECT_TRUE(has(again.finish("s", 5), "No dirty worker"));
}

}  // namespace agente::core

namespace agente::gateway {

TEST(GatewayStatus, BreakersStreamsProvidersAndModelsWithNamesEscaped) {
    ::setenv("STATUS_TEST_PROVIDER_KEY", "sk-secret-do-not-show", 1);
    Config config;
    config.app = std::make_shared<toml::table>(toml::parse(
        "[gateway]\nmax_concurrent_streams = 7\n"
        "[providers.a]\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"STATUS_TEST_PROVIDER_KEY\"\n"
        "[models.\"<img src=x onerror=alert(1)>\"]\ntargets = [{ provider = \"a\", model = \"m&1\" }]\n",
        std::string_view("server.conf")));
    config.app_source = "server.conf";
    asio::io_context io;
    SharedLayout layout{1};
    SharedState shared = declare_shared_state(layout);
    PrivateMemory memory{layout};
    assign_breaker_cells(*shared.breakers, load_gateway_settings(*config.app, config.app_source));
    auto gw = make_gateway(io.get_executor(), config, shared, 0);

    StatusPage page;
    write_gateway_status(*gw, page);
    std::string html = page.finish("s", 5);
    EXPECT_TRUE(has(html, "<td>0</td><td>7</td>")) << html;   // streams: active, limit
    EXPECT_TRUE(has(html, "<td>a</td><td>closed</td><td>0</td>")) << html;
    EXPECT_TRUE(has(html, R"(data-path="/system/circuit-breaker/reset/" data-arg="a">Reset</button>)")) << html;
    EXPECT_TRUE(has(html, "<td>http://127.0.0.1:9/v1</td><td>set</td>")) << html;
    EXPECT_TRUE(has(html, "<td>&lt;img src=x onerror=alert(1)&gt;</td><td>a/m&amp;1</td>")) << html;
    EXPECT_FALSE(has(html, "<img"));
    EXPECT_FALSE(has(html, "sk-secret-do-not-show"));
}

}  // namespace agente::gateway
