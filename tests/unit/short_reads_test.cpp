// Reads that tell Asio the socket is empty after a short read (include/agente/short_reads.hpp): the
// next read then waits for epoll instead of trying first, and must still see every byte that comes,
// whether it came before, between or after the reads, and an end of stream.
#include <agente/short_reads.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace asio = boost::asio;
using boost::system::error_code;
using local = asio::local::stream_protocol;
using namespace std::chrono_literals;

namespace {

struct Pair {
    asio::io_context io;
    local::socket ours{io}, theirs{io};
    Pair() { asio::local::connect_pair(ours, theirs); }
    void send(std::string_view s) { asio::write(theirs, asio::buffer(s.data(), s.size())); }
};

struct Read {
    std::optional<error_code> ec;
    std::size_t n = 0;
};

// Starts one read of at most `room` bytes into `into`.
void start_read(local::socket& s, std::string& into, std::size_t room, Read& r) {
    into.assign(room, '\0');
    s.async_read_some(agente::ShortReadBuffer{asio::buffer(into)}, [&r](error_code ec, std::size_t n) {
        r.ec = ec;
        r.n = n;
    });
}

// Runs the loop until the read completes, for at most two seconds.
bool finish(Pair& p, Read& r) {
    for (auto until = std::chrono::steady_clock::now() + 2s; !r.ec && std::chrono::steady_clock::now() < until;) {
        p.io.run_one_for(100ms);
        p.io.restart();
    }
    return r.ec.has_value();
}

}  // namespace

// `data` sent and read back in one short read, then the next read started: what the tests look at.
class AfterAShortRead : public ::testing::Test {
protected:
    void read_then_start_next(std::string_view data) {
        Read first;
        p.send(data);
        start_read(p.ours, buf, 100, first);
        ASSERT_TRUE(finish(p, first));
        ASSERT_EQ(buf.substr(0, first.n), data);
        start_read(p.ours, buf, 100, second);
    }

    Pair p;
    std::string buf;
    Read second;
};

TEST_F(AfterAShortRead, TheNextOneWaitsAndStillGetsWhatComesLater) {
    read_then_start_next("hello");
    p.io.poll();
    p.io.restart();
    EXPECT_FALSE(second.ec) << "completed with nothing sent";
    p.send("world");
    ASSERT_TRUE(finish(p, second)) << "the bytes sent after a short read never woke the reader";
    EXPECT_EQ(buf.substr(0, second.n), "world");
}

// A read that fills its buffer says nothing about what is left: the next one must try at once,
// since no new event will come for bytes already there.
TEST(ShortReads, AFullReadLeavesTheRestToTheNextReadWithoutAnEvent) {
    Pair p;
    p.send("0123456789");
    std::string buf, got;
    for (int i = 0; i < 3; ++i) {
        Read r;
        start_read(p.ours, buf, 4, r);
        ASSERT_TRUE(finish(p, r)) << "read " << i << " waited for an event that never comes";
        got += buf.substr(0, r.n);
    }
    EXPECT_EQ(got, "0123456789");
}

TEST_F(AfterAShortRead, TheEndOfTheStreamArrives) {
    read_then_start_next("last");
    p.theirs.close();
    ASSERT_TRUE(finish(p, second));
    EXPECT_EQ(*second.ec, asio::error::eof);
}

TEST(ShortReads, BeastReadsPipelinedRequestsSplitAnywhere) {
    Pair p;
    agente::ShortReadStream<local::socket> reader(p.ours);
    boost::beast::flat_buffer buffer;
    std::string two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    p.send(two.substr(0, 20));
    std::vector<std::string> targets;
    std::function<void()> next = [&] {
        auto req = std::make_shared<boost::beast::http::request<boost::beast::http::string_body>>();
        boost::beast::http::async_read(reader, buffer, *req, [&, req](error_code ec, std::size_t) {
            if (ec) return;
            targets.push_back(std::string(req->target()));
            if (targets.size() < 2) next();
        });
    };
    next();
    p.io.poll();
    p.io.restart();
    p.send(two.substr(20));
    for (auto until = std::chrono::steady_clock::now() + 2s; targets.size() < 2 && std::chrono::steady_clock::now() < until;) {
        p.io.run_one_for(100ms);
        p.io.restart();
    }
    EXPECT_EQ(targets, (std::vector<std::string>{"/a", "/b"}));
}
