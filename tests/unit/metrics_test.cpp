// Prometheus' text format as written for GET /metrics, the request counters a worker keeps, and the
// master's classification of worker exits that feeds agente_worker_exits_total.
#include "core/arbiter.hpp"
#include "core/core_metrics.hpp"
#include "core/metrics_route.hpp"
#include "core/shared_memory.hpp"

#include <agente/metrics.hpp>

#include <gtest/gtest.h>

#include <csignal>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace agente;
using namespace agente::core;

TEST(MetricsText, FamiliesSamplesAndEscapes) {
    MetricsText out;
    out.family("agente_x_total", "counter", "Help with a \\ and a\nnewline.");
    out.sample("agente_x_total", {{"route", "/a\"b\\c\nd"}, {"method", "GET"}}, std::uint64_t(3));
    out.sample("agente_x_total", {}, std::int64_t(-2));
    out.sample("agente_y", {}, 0.25);
    out.sample("agente_y", {}, 1e-06);
    EXPECT_EQ(out.text(),
              "# HELP agente_x_total Help with a \\\\ and a\\nnewline.\n"
              "# TYPE agente_x_total counter\n"
              "agente_x_total{route=\"/a\\\"b\\\\c\\nd\",method=\"GET\"} 3\n"
              "agente_x_total -2\n"
              "agente_y 0.25\n"
              "agente_y 1e-06\n");
}

TEST(MetricsText, SpecialFloatsAsPrometheusSpellsThem) {
    MetricsText out;
    out.sample("a", {}, std::numeric_limits<double>::infinity());
    out.sample("a", {}, -std::numeric_limits<double>::infinity());
    out.sample("a", {}, std::numeric_limits<double>::quiet_NaN());
    EXPECT_EQ(out.text(), "a +Inf\na -Inf\na NaN\n");
}

TEST(MetricsText, HistogramBucketsAreCumulatedWithInfEqualToTheCount) {
    MetricsText out;
    const double bounds[] = {0.1, 1};
    const std::uint64_t counts[] = {2, 0, 3};   // the last: above every bound
    out.histogram("h", {{"route", "/x"}}, bounds, counts, 4.5);
    EXPECT_EQ(out.text(),
              "h_bucket{route=\"/x\",le=\"0.1\"} 2\n"
              "h_bucket{route=\"/x\",le=\"1\"} 2\n"
              "h_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
              "h_sum{route=\"/x\"} 4.5\n"
              "h_count{route=\"/x\"} 5\n");
}

TEST(LatencyBucket, TheFirstBoundNotBelowTheValue) {
    using std::chrono::microseconds;
    EXPECT_EQ(latency_bucket(microseconds(0)), 0u);
    EXPECT_EQ(latency_bucket(microseconds(1000)), 0u);      // le="0.001" includes 1 ms
    EXPECT_EQ(latency_bucket(microseconds(1001)), 1u);
    EXPECT_EQ(latency_bucket(microseconds(300'000'000)), latency_buckets - 2);
    EXPECT_EQ(latency_bucket(microseconds(300'000'001)), latency_buckets - 1);   // +Inf
    EXPECT_EQ(latency_bounds_s[0], 0.001);
    EXPECT_EQ(latency_bounds_s[std::size(latency_bounds_s) - 1], 300.0);
}

namespace {

struct CoreMetricsFixture : ::testing::Test {
    SharedLayout layout{4};
    Scoreboard scoreboard{layout};
    CoreMetrics metrics{layout};
    SharedLayout other_layout{4};
    CoreMetrics other_worker{other_layout};   // a second worker's view of the same regions
    SharedMemory other_memory;
    void SetUp() override {
        scoreboard.create();
        other_memory = SharedMemory::attach(::dup(scoreboard.fd()), other_layout);
        scoreboard.claim(100, 1);
        scoreboard.claim(101, 1);
        metrics.bind(0);
        other_worker.bind(1);
    }
    std::string text() {
        MetricsText out;
        metrics.write(out, scoreboard);
        return out.take();
    }
};

}  // namespace

TEST_F(CoreMetricsFixture, RequestsAreSummedOverWorkersByRouteMethodAndStatusClass) {
    int health = metrics.route_label("/health");
    EXPECT_EQ(other_worker.route_label("/health"), health);   // one label, whichever worker registers it
    metrics.record(health, 0, 200, std::chrono::microseconds(500));
    other_worker.record(health, 0, 204, std::chrono::microseconds(3000));
    other_worker.record(int(RouteLabel::unmatched), 2, 404, std::chrono::microseconds(10));
    metrics.record(health, 0, 0, std::chrono::microseconds(10));   // the client left first
    std::string t = text();
    EXPECT_NE(t.find("agente_http_requests_total{route=\"/health\",method=\"GET\",status=\"2xx\"} 2\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_http_requests_total{route=\"/health\",method=\"GET\",status=\"none\"} 1\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_http_requests_total{route=\"unmatched\",method=\"POST\",status=\"4xx\"} 1\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.001\"} 2\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_http_request_duration_seconds_count{route=\"/health\"} 3\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_http_request_duration_seconds_sum{route=\"/health\"} 0.00351\n"), std::string::npos) << t;
    EXPECT_EQ(t.find("route=\"invalid\""), std::string::npos);   // nothing counted: no series
}

TEST_F(CoreMetricsFixture, ADeadWorkersRequestsStayCounted) {
    int health = metrics.route_label("/health");
    for (int i = 0; i < 5; ++i) other_worker.record(health, 0, 200, std::chrono::microseconds(1));
    scoreboard.release(1);   // the master reaped it
    EXPECT_NE(text().find("{route=\"/health\",method=\"GET\",status=\"2xx\"} 5\n"), std::string::npos);
}

TEST_F(CoreMetricsFixture, TooManyRoutePatternsShareOneLabel) {
    for (int i = 0; i < max_route_labels; ++i) EXPECT_EQ(metrics.route_label("/r" + std::to_string(i)), i);
    EXPECT_EQ(metrics.route_label("/one-too-many"), int(RouteLabel::overflow));
}

TEST_F(CoreMetricsFixture, GaugesComeFromTheSlots) {
    scoreboard.slot(0).state = std::uint32_t(WorkerState::ready);
    scoreboard.slot(0).connections = 3;
    scoreboard.slot(1).in_flight = 2;
    scoreboard.claim(102, 2);
    int dirty = scoreboard.claim_dirty(103, 2);
    scoreboard.slot(dirty).connections = 4;   // a dirty worker's: jobs running
    std::string t = text();
    EXPECT_NE(t.find("agente_http_connections 3\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_http_requests_in_flight 2\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_dirty_jobs_running 4\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_workers{pool=\"http\",generation=\"1\",state=\"booting\"} 1\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_workers{pool=\"http\",generation=\"1\",state=\"ready\"} 1\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_workers{pool=\"http\",generation=\"2\",state=\"booting\"} 1\n"), std::string::npos) << t;
    EXPECT_NE(t.find("agente_workers{pool=\"dirty\",generation=\"2\",state=\"booting\"} 1\n"), std::string::npos) << t;
}

// ---- why workers end (arbiter.cpp) ---------------------------------------------------------------

namespace {
WorkerRecord serving(int generation = 1) {
    WorkerRecord w;
    w.pid = 1;
    w.generation = generation;
    w.ready = true;
    return w;
}
}  // namespace

// waitpid's status, as WEXITSTATUS and WTERMSIG read it.
int exited_with(int code) { return code << 8; }
int killed_by(int sig) { return sig; }

ExitReason reason_of(const WorkerRecord& w, int status) {
    PoolHealth health;
    return judge_exit(health, w, status, false, Clock::now()).reason;
}

TEST(ExitReason, EveryEndHasItsReason) {
    WorkerRecord booting = serving();
    booting.ready = false;
    EXPECT_EQ(reason_of(booting, exited_with(1)), ExitReason::boot_failure);
    booting.timeout_stage = 2;   // killed for not booting in time: a boot failure too (it backs off)
    EXPECT_EQ(reason_of(booting, killed_by(SIGKILL)), ExitReason::boot_failure);

    WorkerRecord hung = serving();
    hung.timeout_stage = 2;
    EXPECT_EQ(reason_of(hung, killed_by(SIGKILL)), ExitReason::timeout);
    EXPECT_EQ(reason_of(serving(), killed_by(SIGKILL)), ExitReason::crash);
    EXPECT_EQ(reason_of(serving(), exited_with(3)), ExitReason::exited);

    WorkerRecord at_limit = serving();   // left by itself at max_requests
    at_limit.at_limit = true;
    EXPECT_EQ(reason_of(at_limit, exited_with(0)), ExitReason::max_requests);

    WorkerRecord drained = serving(1);
    drained.draining = true;
    drained.drain_reason = drain_reason(drained, 2, false);
    EXPECT_EQ(reason_of(drained, exited_with(0)), ExitReason::reload);
    drained.drain_reason = drain_reason(drained, 1, false);
    EXPECT_EQ(reason_of(drained, killed_by(SIGKILL)), ExitReason::scale_down);   // killed past graceful_timeout: still why it drained
    drained.drain_reason = drain_reason(drained, 1, true);
    drained.recycled = true;
    EXPECT_EQ(reason_of(drained, exited_with(0)), ExitReason::max_requests);
    drained.recycled = false;
    drained.drain_reason = ExitReason::shutdown;
    EXPECT_EQ(reason_of(drained, exited_with(0)), ExitReason::shutdown);
}

TEST(ExitReason, NamesAreTheMetricsLabels) {
    EXPECT_STREQ(exit_reason_name(ExitReason::boot_failure), "boot_failure");
    EXPECT_STREQ(exit_reason_name(ExitReason::max_requests), "max_requests");
    EXPECT_STREQ(exit_reason_name(ExitReason::shutdown), "shutdown");
}

// ---- who may read /metrics (metrics_route.cpp) ---------------------------------------------------

namespace {

class BearerRequest final : public Request {
public:
    explicit BearerRequest(std::string authorization) : authorization_(std::move(authorization)) {}
    std::string_view method() const override { return "GET"; }
    std::string_view target() const override { return "/metrics"; }
    std::string_view header(std::string_view n) const override {
        if (n == "Authorization") return authorization_;
        return {};
    }
    std::string_view body() const override { return ""; }
    std::string_view remote_addr() const override { return "127.0.0.1"; }
    std::string_view scheme() const override { return "http"; }
    std::string_view path_param() const override { return ""; }

private:
    std::string authorization_;
};

// A socket bound but never listening: nothing can connect to it, whatever its address.
Listener bound(int family, const char* address) {
    int fd = ::socket(family, SOCK_STREAM, 0);
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET) {
        auto& a = reinterpret_cast<sockaddr_in&>(ss);
        a.sin_family = AF_INET;
        ::inet_pton(AF_INET, address, &a.sin_addr);
        len = sizeof a;
    } else {
        auto& a = reinterpret_cast<sockaddr_in6&>(ss);
        a.sin6_family = AF_INET6;
        ::inet_pton(AF_INET6, address, &a.sin6_addr);
        len = sizeof a;
    }
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&ss), len), 0) << address;
    return {address, fd, false};
}

}  // namespace

TEST(MetricsAccess, LoopbackAndUnixSocketsAreLocalOnly) {
    Listener v4 = bound(AF_INET, "127.0.0.1"), v6 = bound(AF_INET6, "::1"), any = bound(AF_INET, "0.0.0.0");
    int unix_fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_TRUE(local_only(v4.fd));
    EXPECT_TRUE(local_only(v6.fd));
    EXPECT_TRUE(local_only(unix_fd));
    EXPECT_FALSE(local_only(any.fd));
    for (int fd : {v4.fd, v6.fd, any.fd, unix_fd}) ::close(fd);
}

TEST(MetricsAccess, WithoutATokenOnlyWhenEveryListenerIsLocal) {
    Config c;
    Listener local = bound(AF_INET, "127.0.0.1"), any = bound(AF_INET, "0.0.0.0");
    EXPECT_FALSE(MetricsAccess(c, {local}).refuse(BearerRequest("")));
    auto refused = MetricsAccess(c, {local, any}).refuse(BearerRequest(""));
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 403);
    EXPECT_NE(refused->body.find("metrics_token"), std::string::npos) << refused->body;
    ::close(local.fd);
    ::close(any.fd);
}

TEST(MetricsAccess, WithATokenOnlyToItsBearer) {
    Config c;
    c.metrics_token = "tok-1";
    Listener any = bound(AF_INET, "0.0.0.0");
    MetricsAccess access(c, {any});
    EXPECT_FALSE(access.refuse(BearerRequest("Bearer tok-1")));
    EXPECT_FALSE(access.refuse(BearerRequest("bearer tok-1")));
    auto wrong = access.refuse(BearerRequest("Bearer tok-2"));
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->status, 401);
    EXPECT_EQ(access.refuse(BearerRequest(""))->status, 401);
    ::close(any.fd);
}
