// The access log: the compiled format and its escaping (nginx's \xHH), the pieces a stream is
// written in, and the buffer's promises: lines go out when it fills, on the timer, before a reopen
// and at close; a stalled stream keeps them until it drains, and past the bound they are counted.
#include "core/access_format.hpp"
#include "core/access_log.hpp"
#include "core/log_target.hpp"
#include "fake_request.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

using namespace agente;
using namespace agente::core;
using namespace std::chrono_literals;

namespace {

AccessRecord record_of(const Request& q, int status = 200, std::uint64_t bytes = 0) {
    AccessRecord r;
    r.request = &q;
    r.version = "HTTP/1.1";
    r.status = status;
    r.bytes = bytes;
    return r;
}

std::string formatted(std::string_view format, const AccessRecord& r) {
    AccessFormat f(format);
    return f.format(r);
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/access-log-test.XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

Config log_config(const std::string& path, std::uint64_t buffer, std::string format = "%(a)s") {
    Config c;
    c.accesslog = path;
    c.access_log_buffer = buffer;
    c.access_log_format = std::move(format);
    return c;
}

}  // namespace

TEST(AccessFormat, GunicornDefaultFormat) {
    FakeRequest q;
    q.headers_["User-Agent"] = "curl/8";
    std::string line = formatted(Config().access_log_format, record_of(q));
    EXPECT_TRUE(line.starts_with("10.0.0.1 - - [")) << line;
    EXPECT_TRUE(line.ends_with(R"("GET /a/b?x=1 HTTP/1.1" 200 - "-" "curl/8")")) << line;
}

TEST(AccessFormat, AtomsHeadersAndTimes) {
    FakeRequest q;
    q.headers_["X-Id"] = "abc";
    AccessRecord r = record_of(q, 404, 12);
    r.version = "HTTP/1.0";
    r.duration = 2500us;
    r.response_header = [](const void*, std::string_view n) {
        return n == "Server" ? std::string_view("agente") : std::string_view();
    };
    EXPECT_EQ(formatted("%(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(D)s %(M)s %(T)s %(L)s %({X-Id}i)s %({Server}o)s %(zz)s", r),
              "GET /a/b x=1 HTTP/1.0 404 12 2500 2 0 0.002500 abc agente -");
    r.duration = 1'234'567'890us;
    EXPECT_EQ(formatted("%(T)s %(L)s", r), "1234 1234.567890");
    EXPECT_TRUE(AccessFormat("%(L)s").timed());
    EXPECT_FALSE(AccessFormat(Config().access_log_format).timed());  // the clock is read only when needed
}

TEST(AccessFormat, AResponseHeaderIsFoundInTheHeadAsSent) {
    std::string_view head = "HTTP/1.1 200 OK\r\nServer: agente\r\nContent-Type:text/plain\r\n"
                            "X-Empty: \r\nContent-Length: 5\r\n\r\n";
    EXPECT_EQ(header_in_head(head, "content-type"), "text/plain");
    EXPECT_EQ(header_in_head(head, "Content-Length"), "5");
    EXPECT_EQ(header_in_head(head, "X-Empty"), "");
    EXPECT_EQ(header_in_head(head, "Content"), "");      // a prefix of a name is not the name
    EXPECT_EQ(header_in_head(head, "HTTP/1.1 200 OK"), "");
    EXPECT_EQ(header_in_head("", "Server"), "");           // nothing sent
}

TEST(AccessFormat, TimeAndPidAsGunicornWritesThem) {
    FakeRequest q;
    AccessRecord r = record_of(q);
    r.time = 1'795'000'000;
    std::string line = formatted("%(t)s %(p)s", r);
    EXPECT_TRUE(std::regex_match(line, std::regex(R"(\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] <\d+>)"))) << line;
}

// A User-Agent used to be able to close the quoted field and write fields (or lines) of its own.
TEST(AccessFormat, EscapesQuotesBackslashesControlAndNonAsciiBytesAsNginxDoes) {
    FakeRequest q;
    q.headers_["User-Agent"] = "x\" 200 \"forged\\\n\x7f\xc3\xa9 ok~";
    EXPECT_EQ(formatted(R"("%(a)s")", record_of(q)), R"("x\x22 200 \x22forged\x5C\x0A\x7F\xC3\xA9 ok~")");
    q.target_ = "/a\"b";
    q.remote_ = "1.2.3.4\t";
    EXPECT_EQ(formatted("%(h)s %(r)s %(U)s", record_of(q)), R"(1.2.3.4\x09 GET /a\x22b HTTP/1.1 /a\x22b)");
}

TEST(AccessFormat, AMissingValueIsADashAndLiteralsStayAsWritten) {
    FakeRequest q;
    q.target_ = "/plain";
    EXPECT_EQ(formatted(R"([%(q)s] "%(f)s" "%(a)s" %({X-None}i)s %({Server}o)s %(b)s %(l)s %(u)s \ ")", record_of(q)),
              R"([] "-" "-" - - - - - \ ")");  // the query is empty, as in gunicorn
}

TEST(AccessFormat, AnEnvironmentVariableIsReadOnceAndEscaped) {
    ::setenv("ACCESS_FORMAT_TEST", "a\"b", 1);
    AccessFormat f("%({ACCESS_FORMAT_TEST}e)s %({ACCESS_FORMAT_UNSET}e)s");
    ::setenv("ACCESS_FORMAT_TEST", "changed", 1);
    FakeRequest q;
    EXPECT_EQ(f.format(record_of(q)), R"(a\x22b -)");
}

TEST(AccessFormat, PreparedRoomHoldsTheWorstLine) {
    std::string every_byte;
    for (int c = 0; c < 256; ++c) every_byte += char(c);
    FakeRequest q;
    q.headers_["User-Agent"] = every_byte;
    q.headers_["Referer"] = every_byte;
    q.target_ = every_byte;
    AccessRecord r = record_of(q, 599, ~0ull);
    r.duration = std::chrono::microseconds(std::numeric_limits<std::int64_t>::max());
    AccessFormat f(Config().access_log_format + " %(D)s %(L)s %(B)s");
    std::size_t room = f.prepare(r);
    std::string out(room, '\0');
    char* end = f.write(out.data(), r);
    EXPECT_LE(std::size_t(end - out.data()), room);
    std::string_view line(out.data(), std::size_t(end - out.data()) - 1);
    EXPECT_EQ(end[-1], '\n');
    EXPECT_EQ(std::count(line.begin(), line.end(), '"'), 6);  // the format's own quotes, no more
    for (char ch : line) {
        auto c = static_cast<unsigned char>(ch);
        ASSERT_TRUE(c >= 0x20 && c < 0x7f) << int(c);
    }
}

TEST(LogTarget, AStreamIsWrittenInWholeLinesOfAtMostTheAtomicSize) {
    EXPECT_EQ(next_piece("ab\ncd\n", 4096), 6u);
    EXPECT_EQ(next_piece("ab\ncd\nef\n", 7), 6u);           // two lines fit, the third waits
    EXPECT_EQ(next_piece("ab\ncd\nef\n", 6), 6u);           // exactly
    EXPECT_EQ(next_piece("abcdefgh\nij\n", 4), 9u);         // a line longer than that goes whole
    EXPECT_EQ(next_piece("abcdefgh", 4), 8u);
}

TEST(AccessLog, LinesWaitInTheBufferUntilItFillsOrCloses) {
    TempDir dir;
    asio::io_context io;
    FakeRequest q;
    q.headers_["User-Agent"] = std::string(100, 'u');
    AccessLog log(log_config(dir / "access.log", 4096), io.get_executor());
    for (int i = 0; i < 5; ++i) log.write(record_of(q));
    EXPECT_TRUE(lines_of(dir / "access.log").empty());  // buffered
    for (int i = 0; i < 95; ++i) log.write(record_of(q));
    auto written = lines_of(dir / "access.log").size();
    EXPECT_GT(written, 0u);  // the buffer filled
    EXPECT_LT(written, 100u);
    log.close();
    auto lines = lines_of(dir / "access.log");
    ASSERT_EQ(lines.size(), 100u);
    for (const auto& l : lines) EXPECT_EQ(l, std::string(100, 'u'));
}

TEST(AccessLog, TheTimerWritesALineThatWaits) {
    TempDir dir;
    asio::io_context io;
    FakeRequest q;
    q.headers_["User-Agent"] = "late";
    Config c = log_config(dir / "access.log", 64 * 1024);
    c.access_log_flush = 1;
    AccessLog log(c, io.get_executor());
    log.write(record_of(q));
    EXPECT_TRUE(lines_of(dir / "access.log").empty());
    io.run_for(3s);  // the timer is all there is to run; it fires after a second
    EXPECT_EQ(lines_of(dir / "access.log"), std::vector<std::string>{"late"});
}

TEST(AccessLog, WithoutABufferEachLineIsWrittenAtOnce) {
    TempDir dir;
    asio::io_context io;
    FakeRequest q;
    q.headers_["User-Agent"] = "now";
    AccessLog log(log_config(dir / "access.log", 0), io.get_executor());
    log.write(record_of(q));
    EXPECT_EQ(lines_of(dir / "access.log"), std::vector<std::string>{"now"});
}

TEST(AccessLog, AReopenWritesWhatWasBufferedToTheOldFileFirst) {
    TempDir dir;
    asio::io_context io;
    FakeRequest q;
    AccessLog log(log_config(dir / "access.log", 64 * 1024), io.get_executor());
    q.headers_["User-Agent"] = "old";
    log.write(record_of(q));
    log.write(record_of(q));
    std::filesystem::rename(dir / "access.log", dir / "access.log.1");  // logrotate
    log.reopen();
    q.headers_["User-Agent"] = "new";
    log.write(record_of(q));
    log.close();
    EXPECT_EQ(lines_of(dir / "access.log.1"), (std::vector<std::string>{"old", "old"}));
    EXPECT_EQ(lines_of(dir / "access.log"), std::vector<std::string>{"new"});
}

// A FIFO stands for stdout piped to a reader that stalls (the journal, `| logger`).
class StalledStream : public ::testing::Test {
protected:
    void SetUp() override {
        ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
        reader = ::open(path.c_str(), O_RDONLY | O_NONBLOCK);
        ASSERT_GE(reader, 0);
    }
    void TearDown() override { ::close(reader); }

    // Reads what the log writes, running the loop so its writes resume, until `lines` arrived.
    std::vector<std::string> drain(asio::io_context& io, std::size_t lines) {
        std::string data;
        char buf[65536];
        auto deadline = std::chrono::steady_clock::now() + 20s;
        while (std::size_t(std::count(data.begin(), data.end(), '\n')) < lines &&
               std::chrono::steady_clock::now() < deadline) {
            ssize_t n = ::read(reader, buf, sizeof buf);
            if (n > 0) data.append(buf, std::size_t(n));
            io.poll();
            io.restart();
        }
        std::vector<std::string> out;
        std::istringstream in(data);
        for (std::string line; std::getline(in, line);) out.push_back(line);
        return out;
    }

    TempDir dir;
    std::string path = dir / "fifo";
    int reader = -1;
};

TEST_F(StalledStream, KeepsItsLinesWithoutBlockingAndWritesThemOnceItDrains) {
    asio::io_context io;
    FakeRequest q;
    q.headers_["User-Agent"] = std::string(100, 's');
    AccessLog log(log_config(path, 0), io.get_executor());  // each line tried at once
    const int n = 3000;                                     // 300 KB: far more than a pipe holds
    for (int i = 0; i < n; ++i) log.write(record_of(q));    // returns although nobody reads
    EXPECT_EQ(log.lost(), 0u);
    auto lines = drain(io, n);
    ASSERT_EQ(lines.size(), std::size_t(n));
    for (const auto& l : lines) ASSERT_EQ(l, std::string(100, 's'));
    log.close();
    EXPECT_EQ(log.lost(), 0u);
}

TEST_F(StalledStream, PastTheBacklogLimitNewLinesAreDroppedAndCounted) {
    asio::io_context io;
    FakeRequest q;
    q.headers_["User-Agent"] = std::string(100, 'd');
    AccessLog log(log_config(path, 64 * 1024), io.get_executor());
    const int n = 60'000;  // about 6 MB of lines
    for (int i = 0; i < n; ++i) log.write(record_of(q));
    ASSERT_GT(log.lost(), 0u);
    std::size_t kept = std::size_t(n) - log.lost();
    auto lines = drain(io, kept);
    log.close();
    EXPECT_EQ(lines.size(), kept);  // everything not counted arrived, whole
    for (const auto& l : lines) ASSERT_EQ(l, std::string(100, 'd'));
}
