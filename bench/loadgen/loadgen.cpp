// An open-loop HTTP/1.1 load generator (wrk2's method): requests are due on a fixed timetable
// (request i at start + i / rate), sent on the first free keep-alive connection, and each one's
// latency is measured from the time it was *due*, not from when it could be sent. A server that
// falls behind therefore shows its queueing delay instead of silently lowering the offered rate
// (no coordinated omission). Single-threaded io_context; Beast parses the responses (Content-Length
// or chunked). Any non-2xx answer or connection error stops the run with exit status 1.
//
//   loadgen --port P --rate R [--host 127.0.0.1] [--path /] [--body-file F] [--header 'K: V']...
//           [--duration 10] [--warmup 2] [--connections 32] [--label name] [--record-header NAME]
//           [--samples FILE]
//
// Prints one line: label, offered and achieved rate, then latency (due -> last byte) p50 p90 p99
// p99.9 max and time to the response's header (due -> header parsed) p50 p99, all in ms, and the
// CPU seconds the generator itself used; with --record-header, also the p50 p90 p99 p99.9 of that
// response header's numeric value (hdr_p50=... hdr_p90 hdr_p99: e.g. a proxy's own overhead in ms). Only
// requests due after the warm-up are counted. "late" counts requests sent more than 1 ms after they
// were due (no free connection, or the loop itself behind); "unfinished" those still open when the
// run ends (duration + 2 s of grace): a run with unfinished requests did not sustain the rate.
// --samples writes one line per counted request, "due_ms latency_ms" (due time from the start of
// the run), to see whether slow requests come alone or in bursts (a stall delays all in flight).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <sys/prctl.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ns = std::chrono::nanoseconds;

namespace {

[[noreturn]] void die(const std::string& msg) {
    std::fprintf(stderr, "loadgen: %s\n", msg.c_str());
    std::fflush(stderr);
    std::_Exit(1);
}

struct Options {
    std::string host = "127.0.0.1", port, path = "/", body, label = "run", record_header, samples;
    std::vector<std::string> headers;
    double rate = 0, duration = 10, warmup = 2;
    int connections = 32;
};

struct Sample {
    std::int64_t due_ns, total_ns, header_ns;
    double recorded;  // the --record-header value, 0 without one
};

class Run;

class Conn : public std::enable_shared_from_this<Conn> {
public:
    Conn(asio::io_context& io, Run& run) : sock_(io), run_(run) {}
    tcp::socket& socket() { return sock_; }
    void send(std::uint64_t index, Clock::time_point due);

private:
    void on_header(beast::error_code ec);
    void on_body(beast::error_code ec);

    tcp::socket sock_;
    Run& run_;
    beast::flat_buffer buf_;
    std::optional<http::response_parser<http::string_body>> parser_;
    std::uint64_t index_ = 0;
    Clock::time_point due_, header_at_;
};

class Run {
public:
    Run(asio::io_context& io, Options o) : io_(io), opt_(std::move(o)), timer_(io) {
        std::ostringstream r;
        r << (opt_.body.empty() ? "GET " : "POST ") << opt_.path << " HTTP/1.1\r\nHost: " << opt_.host
          << "\r\n";
        for (auto& h : opt_.headers) r << h << "\r\n";
        if (!opt_.body.empty()) r << "Content-Length: " << opt_.body.size() << "\r\n";
        r << "\r\n" << opt_.body;
        request_ = r.str();
        total_ = static_cast<std::uint64_t>(opt_.rate * (opt_.warmup + opt_.duration));
        first_counted_ = static_cast<std::uint64_t>(opt_.rate * opt_.warmup);
        samples_.reserve(total_ - first_counted_);
    }

    const std::string& request() const { return request_; }
    const std::string& record_header() const { return opt_.record_header; }

    void start() {
        tcp::resolver res(io_);
        auto eps = res.resolve(opt_.host, opt_.port);
        for (int i = 0; i < opt_.connections; ++i) {
            auto c = std::make_shared<Conn>(io_, *this);
            asio::connect(c->socket(), eps);
            c->socket().set_option(tcp::no_delay(true));
            conns_.push_back(c);
            idle_.push_back(c.get());
        }
        start_ = Clock::now() + std::chrono::milliseconds(10);
        end_ = due(total_) + std::chrono::seconds(2);
        timer_.expires_at(start_);
        timer_.async_wait([this](beast::error_code) { tick(); });
    }

    Clock::time_point due(std::uint64_t i) const {
        return start_ + ns(static_cast<std::int64_t>(static_cast<double>(i) * 1e9 / opt_.rate));
    }

    // A connection finished request `index` (due at `due`).
    void done(Conn* c, std::uint64_t index, Clock::time_point due_at, Clock::time_point header_at,
              double recorded) {
        auto now = Clock::now();
        ++finished_;
        last_done_ = now;
        if (index >= first_counted_)
            samples_.push_back({(due_at - start_).count(), (now - due_at).count(), (header_at - due_at).count(), recorded});
        if (finished_ == total_) {
            timer_.cancel();
            return;
        }
        advance(now);
        if (next_send_ < next_due_) {
            send_on(c, now);
        } else {
            idle_.push_back(c);
        }
    }

    void report() {
        // Achieved: counted requests over the time from the first counted one's due time to the
        // last answer (longer than the duration when the server fell behind).
        double secs = std::max(opt_.duration,
                               std::chrono::duration<double>(last_done_ - due(first_counted_)).count());
        std::uint64_t counted = samples_.size();
        std::uint64_t unfinished = total_ - finished_;
        auto pct = [&](std::vector<std::int64_t>& v, double p) -> double {
            if (v.empty()) return 0;
            std::size_t k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()));
            if (k >= v.size()) k = v.size() - 1;
            return static_cast<double>(v[k]) / 1e6;
        };
        std::vector<std::int64_t> tot, hdr;
        tot.reserve(counted);
        hdr.reserve(counted);
        for (auto& s : samples_) {
            tot.push_back(s.total_ns);
            hdr.push_back(s.header_ns);
        }
        std::sort(tot.begin(), tot.end());
        std::sort(hdr.begin(), hdr.end());
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                     static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        double last_ms = tot.empty() ? 0 : static_cast<double>(tot.back()) / 1e6;
        std::printf(
            "label=%s rate=%.0f achieved=%.0f requests=%llu late=%llu unfinished=%llu "
            "p50=%.3f p90=%.3f p99=%.3f p999=%.3f max=%.3f ttfb_p50=%.3f ttfb_p99=%.3f cpu_s=%.2f",
            opt_.label.c_str(), opt_.rate, static_cast<double>(counted) / secs,
            static_cast<unsigned long long>(counted), static_cast<unsigned long long>(late_),
            static_cast<unsigned long long>(unfinished), pct(tot, 50), pct(tot, 90), pct(tot, 99),
            pct(tot, 99.9), last_ms, pct(hdr, 50), pct(hdr, 99), cpu);
        if (!opt_.record_header.empty()) {
            std::vector<double> rec;
            for (auto& s : samples_) rec.push_back(s.recorded);
            std::sort(rec.begin(), rec.end());
            auto at = [&](double p) {
                return rec.empty() ? 0.0 : rec[std::min(rec.size() - 1, std::size_t(p / 100.0 * double(rec.size())))];
            };
            std::printf(" hdr_p50=%.3f hdr_p90=%.3f hdr_p99=%.3f hdr_p999=%.3f", at(50), at(90), at(99), at(99.9));
        }
        std::printf("\n");
        std::fflush(stdout);
        write_samples();
        if (unfinished > 0) std::exit(2);
    }

private:
    void write_samples() const {
        if (opt_.samples.empty()) return;
        std::ofstream f(opt_.samples);
        for (auto& s : samples_)
            f << static_cast<double>(s.due_ns) / 1e6 << ' ' << static_cast<double>(s.total_ns) / 1e6 << '\n';
        if (!f) die("cannot write " + opt_.samples);
    }

    void advance(Clock::time_point now) {
        while (next_due_ < total_ && due(next_due_) <= now) ++next_due_;
    }

    void send_on(Conn* c, Clock::time_point now) {
        auto d = due(next_send_);
        if (now - d > std::chrono::milliseconds(1) && next_send_ >= first_counted_) ++late_;
        c->send(next_send_++, d);
    }

    void tick() {
        auto now = Clock::now();
        if (now > end_) {
            io_.stop();
            return;
        }
        advance(now);
        while (next_send_ < next_due_ && !idle_.empty()) {
            Conn* c = idle_.front();
            idle_.pop_front();
            send_on(c, now);
        }
        // Next wake-up: the next request due, or the end-of-run deadline once all are due.
        timer_.expires_at(next_due_ < total_ ? due(next_due_) : end_);
        timer_.async_wait([this](beast::error_code ec) {
            if (!ec) tick();
        });
    }

    asio::io_context& io_;
    Options opt_;
    asio::steady_timer timer_;
    std::string request_;
    std::vector<std::shared_ptr<Conn>> conns_;
    std::deque<Conn*> idle_;  // FIFO: every connection is used in turn, none sits idle long
    Clock::time_point start_, end_, last_done_;
    std::uint64_t total_ = 0, first_counted_ = 0, next_due_ = 0, next_send_ = 0, finished_ = 0, late_ = 0;
    std::vector<Sample> samples_;
};

void Conn::send(std::uint64_t index, Clock::time_point due) {
    index_ = index;
    due_ = due;
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    asio::async_write(sock_, asio::buffer(run_.request()),
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                          if (ec) die("write: " + ec.message());
                          http::async_read_header(self->sock_, self->buf_, *self->parser_,
                                                  [self](beast::error_code ec2, std::size_t) { self->on_header(ec2); });
                      });
}

void Conn::on_header(beast::error_code ec) {
    if (ec) die("read header: " + ec.message());
    header_at_ = Clock::now();
    unsigned status = parser_->get().result_int();
    if (status < 200 || status > 299) {
        // Read what is there of the body for the message, then stop.
        std::ostringstream m;
        m << "HTTP " << status << " from the server";
        die(m.str());
    }
    if (parser_->is_done()) {
        on_body({});
        return;
    }
    http::async_read(sock_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec2, std::size_t) { self->on_body(ec2); });
}

void Conn::on_body(beast::error_code ec) {
    if (ec) die("read body: " + ec.message());
    if (!parser_->keep_alive()) die("the server closed a keep-alive connection (Connection: close)");
    double recorded = 0;
    if (!run_.record_header().empty()) {
        auto v = parser_->get()[run_.record_header()];
        recorded = std::strtod(std::string(v).c_str(), nullptr);
    }
    run_.done(this, index_, due_, header_at_, recorded);
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) die("missing value for " + a);
            return argv[++i];
        };
        if (a == "--host") o.host = val();
        else if (a == "--port") o.port = val();
        else if (a == "--path") o.path = val();
        else if (a == "--label") o.label = val();
        else if (a == "--record-header") o.record_header = val();
        else if (a == "--samples") o.samples = val();
        else if (a == "--header") o.headers.push_back(val());
        else if (a == "--rate") o.rate = std::stod(val());
        else if (a == "--duration") o.duration = std::stod(val());
        else if (a == "--warmup") o.warmup = std::stod(val());
        else if (a == "--connections") o.connections = std::stoi(val());
        else if (a == "--body-file") {
            std::ifstream f(val(), std::ios::binary);
            if (!f) die("cannot read the body file");
            o.body.assign(std::istreambuf_iterator<char>(f), {});
            while (!o.body.empty() && (o.body.back() == '\n' || o.body.back() == '\r')) o.body.pop_back();
        } else die("unknown argument " + a);
    }
    if (o.port.empty() || o.rate <= 0 || o.duration <= 0 || o.connections <= 0)
        die("usage: loadgen --port P --rate R [--host H] [--path P] [--body-file F] [--header 'K: V'] "
            "[--duration S] [--warmup S] [--connections N] [--label L]");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake up on time, not up to 50 us late
    asio::io_context io(1);
    Run run(io, o);
    try {
        run.start();
        io.run();
    } catch (const std::exception& e) {
        die(e.what());
    }
    run.report();
    return 0;
}
