// Beast's parser as the session uses it, fed bytes directly: what it refuses before the framing
// rules see the header (a folded field line, which RequestParser tells apart by where Beast's value
// lies) and what it takes as Beast does.
#include "core/request_parser.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>

#include <memory>
#include <string>

using namespace agente::core;
namespace http = boost::beast::http;

namespace {

// The header of `raw`, parsed in one piece or `piece` bytes at a time (as a slow client sends it);
// the error, if any, and the parser.
struct Parsed {
    boost::beast::error_code ec;
    RequestParser parser;
};

void parse(Parsed& p, std::string_view raw, std::size_t piece = 0) {
    std::string held;  // what arrived and is not consumed yet, as the session's buffer holds it
    for (std::size_t at = 0; at < raw.size() && !p.parser.is_header_done();) {
        std::size_t n = piece ? std::min(piece, raw.size() - at) : raw.size() - at;
        held.append(raw.substr(at, n));
        at += n;
        std::size_t used = p.parser.put(boost::asio::buffer(held), p.ec);
        held.erase(0, used);
        if (p.ec == http::error::need_more) p.ec = {};
        else if (p.ec) return;
    }
}

}  // namespace

TEST(RequestParser, TakesFieldsWithAndWithoutBlanksAndEmptyValues) {
    for (std::size_t piece : {0, 1, 7}) {
        Parsed p;
        parse(p, "GET / HTTP/1.1\r\nHost: x\r\nA:b\r\nB: \t c d \t\r\nC:\r\nD:   \r\n\r\n", piece);
        ASSERT_FALSE(p.ec) << p.ec.message();
        ASSERT_TRUE(p.parser.is_header_done());
        auto& m = p.parser.get();
        EXPECT_EQ(m["A"], "b");
        EXPECT_EQ(m["B"], "c d");
        EXPECT_EQ(m["C"], "");
        EXPECT_EQ(m["D"], "");
        EXPECT_TRUE(p.parser.refusal().empty());
    }
}

TEST(RequestParser, RefusesAFoldedFieldLineWhereBeastWouldJoinIt) {
    for (std::string_view fold : {"X: a\r\n b\r\n", "X: a\r\n\tb\r\n", "X:\r\n b\r\n", "X: \r\n \r\n", "X: a\r\n  \r\n"})
        for (std::size_t piece : {0, 1, 5}) {
            Parsed p;
            parse(p, std::string("GET / HTTP/1.1\r\nHost: x\r\n") + std::string(fold) + "Y: z\r\n\r\n", piece);
            EXPECT_EQ(p.ec, http::error::bad_value) << fold;
            EXPECT_EQ(p.parser.refusal(), "obsolete line folding in a header field");
        }
}

TEST(RequestParser, KeepsATrailersFieldsOutOfTheHeader) {
    Parsed p;
    std::string raw = "POST / HTTP/1.1\r\nHost: good\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n0\r\nHost: evil\r\nAuthorization: Bearer x\r\n\r\n";
    std::size_t used = p.parser.put(boost::asio::buffer(raw), p.ec);
    ASSERT_FALSE(p.ec) << p.ec.message();
    for (int i = 0; i < 10 && !p.parser.is_done() && !p.ec; ++i)  // the body a piece per call
        used += p.parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), p.ec);
    ASSERT_FALSE(p.ec) << p.ec.message();
    auto& m = p.parser.get();
    EXPECT_EQ(m.body(), "hello");
    EXPECT_EQ(m.count("Host"), 1u);
    EXPECT_EQ(m["Host"], "good");
    EXPECT_EQ(m.count("Authorization"), 0u);
}

// A body is handed over with simdjson's padding allocated after it (Request::body_padding()), so
// the gateway reads it in place: sized ahead by its Content-Length, or made room for at the end of
// a chunked one, however the chunks filled the string. No body, no allocation for it.
TEST(RequestParser, LeavesRoomForSimdjsonAfterTheBody) {
    auto whole = [](const std::string& raw) {
        auto p = std::make_unique<Parsed>();
        std::size_t used = 0;
        for (int i = 0; i < 10000 && !p->parser.is_done() && !p->ec; ++i) {
            used += p->parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), p->ec);
            if (p->ec == http::error::need_more) p->ec = {};
        }
        EXPECT_FALSE(p->ec) << p->ec.message();
        EXPECT_TRUE(p->parser.is_done());
        return p;
    };
    for (std::size_t size : {1, 15, 16, 100, 4096}) {
        std::string body(size, 'x');
        auto sized = whole("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + body);
        EXPECT_EQ(sized->parser.get().body(), body);
        EXPECT_GE(sized->parser.get().body_padding(), agente::min_body_padding) << size;

        std::string chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (std::size_t at = 0; at < size; at += 7) {
            std::size_t n = std::min<std::size_t>(7, size - at);
            chunked += std::to_string(n) + "\r\n" + body.substr(at, n) + "\r\n";
        }
        auto grown = whole(chunked + "0\r\n\r\n");
        EXPECT_EQ(grown->parser.get().body(), body);
        EXPECT_GE(grown->parser.get().body_padding(), agente::min_body_padding) << size;
    }
    auto none = whole("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_LT(none->parser.get().body_padding(), agente::min_body_padding);   // the string's own bytes
}
