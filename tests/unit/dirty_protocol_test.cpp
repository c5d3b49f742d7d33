// The dirty pool's frames: what each end writes is what the other reads, and bad input is refused
// before a body is read.
#include "core/dirty_protocol.hpp"

#include <gtest/gtest.h>

using namespace agente;
using namespace agente::core::dirty;

namespace {

const unsigned char* bytes(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }

// Feeds `data` to a reader in pieces of `piece` bytes; returns the frames it cut, as (type, id, body).
std::vector<std::tuple<FrameType, std::uint64_t, std::string>> cut(const std::string& data, std::size_t piece) {
    FrameReader reader;
    std::vector<std::tuple<FrameType, std::uint64_t, std::string>> frames;
    for (std::size_t at = 0; at < data.size(); at += piece) {
        std::size_t n = std::min(piece, data.size() - at);
        std::memcpy(reader.prepare(n), data.data() + at, n);
        reader.commit(n);
        Header h;
        std::string_view body;
        while (reader.next(h, body) == FrameReader::Next::frame) frames.emplace_back(h.type, h.id, std::string(body));
    }
    return frames;
}

}  // namespace

TEST(DirtyFrames, TheHeaderIsSixteenBigEndianBytes) {
    std::string f = frame(FrameType::chunk, 0x0102030405060708, "abc");
    ASSERT_EQ(f.size(), header_size + 3);
    EXPECT_EQ(f.substr(0, 4), std::string("ah\x01\x04", 4));
    EXPECT_EQ(f.substr(4, 4), std::string("\0\0\0\x03", 4));
    EXPECT_EQ(f.substr(8, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    ParsedHeader p = parse_header(bytes(f));
    ASSERT_EQ(p.error, nullptr);
    EXPECT_EQ(p.header.type, FrameType::chunk);
    EXPECT_EQ(p.header.length, 3u);
    EXPECT_EQ(p.header.id, 0x0102030405060708u);
}

TEST(DirtyFrames, BadHeadersAreRefusedBeforeTheBody) {
    std::string good = frame(FrameType::response, 1, "x");
    auto error_with = [&](std::size_t at, char value) {
        std::string f = good;
        f[at] = value;
        return std::string(parse_header(bytes(f)).error ? parse_header(bytes(f)).error : "");
    };
    EXPECT_EQ(error_with(0, 'x'), "bad magic");
    EXPECT_EQ(error_with(2, 2), "unsupported version");
    EXPECT_EQ(error_with(3, 0), "unknown frame type");
    EXPECT_EQ(error_with(3, 7), "unknown frame type");
    EXPECT_EQ(error_with(4, 0x04), "frame too large");   // 64 MiB + 1 byte
    std::string at_limit = good;
    at_limit[4] = 0x04, at_limit[5] = 0, at_limit[6] = 0, at_limit[7] = 0;
    EXPECT_EQ(parse_header(bytes(at_limit)).error, nullptr);   // exactly 64 MiB
}

TEST(DirtyFrames, ARequestCarriesItsFlagsDeadlineKindAndPayload) {
    Request r;
    r.streamed = true;
    r.deadline_ns = 123456789012345;
    r.kind = "rag.search";
    r.payload = std::string_view("q\0uery", 6);
    std::string f = request_head(9, r) + std::string(r.payload);
    auto frames = cut(f, f.size());
    ASSERT_EQ(frames.size(), 1u);
    auto [type, id, body] = frames[0];
    EXPECT_EQ(type, FrameType::request);
    EXPECT_EQ(id, 9u);
    auto back = parse_request(body);
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->streamed);
    EXPECT_EQ(back->deadline_ns, 123456789012345);
    EXPECT_EQ(back->kind, "rag.search");
    EXPECT_EQ(back->payload, std::string_view("q\0uery", 6));
}

TEST(DirtyFrames, MalformedRequestsAreRefused) {
    EXPECT_FALSE(parse_request(""));
    EXPECT_FALSE(parse_request(std::string("\0\0\0\0\0\0\0\0\0\0\0", 11)));           // empty kind
    EXPECT_FALSE(parse_request(std::string("\0\0\0\0\0\0\0\0\0\0\x05" "ab", 13)));   // kind longer than the body
    EXPECT_FALSE(parse_request(std::string("\x02\0\0\0\0\0\0\0\0\0\x01" "a", 12)));  // unknown flag
}

TEST(DirtyFrames, ErrorsKeepTheirKindCodeAndMessage) {
    for (DirtyErrc kind : {DirtyErrc::timeout, DirtyErrc::unavailable, DirtyErrc::job_failed}) {
        std::string f = error_frame(3, {kind, "not_found", "no such document"});
        auto frames = cut(f, 5);
        ASSERT_EQ(frames.size(), 1u);
        auto e = parse_error(std::get<2>(frames[0]));
        ASSERT_TRUE(e);
        EXPECT_EQ(e->kind, kind);
        EXPECT_EQ(e->code, "not_found");
        EXPECT_EQ(e->message, "no such document");
    }
    EXPECT_FALSE(parse_error(std::string("\x09\0\0", 3)));
    EXPECT_FALSE(parse_error(std::string("\x03\0\x09" "ab", 5)));
}

TEST(DirtyFrames, TheReaderCutsFramesHoweverTheBytesArrive) {
    std::string stream = frame(FrameType::chunk, 1, "one") + frame(FrameType::chunk, 1, "") +
                         frame(FrameType::end, 1, std::string(100000, 'z'));
    for (std::size_t piece : {1ul, 7ul, 16ul, 4096ul, stream.size()}) {
        auto frames = cut(stream, piece);
        ASSERT_EQ(frames.size(), 3u) << piece;
        EXPECT_EQ(std::get<2>(frames[0]), "one");
        EXPECT_EQ(std::get<2>(frames[1]), "");
        EXPECT_EQ(std::get<0>(frames[2]), FrameType::end);
        EXPECT_EQ(std::get<2>(frames[2]).size(), 100000u);
    }
}

TEST(DirtyFrames, TheReaderStopsAtABadHeader) {
    FrameReader reader;
    std::string junk = "GET / HTTP/1.1\r\n\r\n";
    std::memcpy(reader.prepare(junk.size()), junk.data(), junk.size());
    reader.commit(junk.size());
    Header h;
    std::string_view body;
    EXPECT_EQ(reader.next(h, body), FrameReader::Next::bad);
    EXPECT_STREQ(reader.error(), "bad magic");
}

TEST(DirtyErrcNames, AreTheContractsWords) {
    EXPECT_EQ(to_string(DirtyErrc::timeout), "timeout");
    EXPECT_EQ(to_string(DirtyErrc::unavailable), "unavailable");
    EXPECT_EQ(to_string(DirtyErrc::job_failed), "job_failed");
    EXPECT_EQ(to_string(DirtyErrc::worker_died), "worker_died");
    EXPECT_EQ(to_string(DirtyErrc::cancelled), "cancelled");
}

TEST(DirtyFrames, TheReaderAsksForWhatTheFrameUnderWayLacks) {
    FrameReader reader;
    EXPECT_EQ(reader.next_read_size(), FrameReader::min_read);
    std::string big = frame(FrameType::response, 1, std::string(100000, 'b'));
    std::memcpy(reader.prepare(20), big.data(), 20);
    reader.commit(20);
    EXPECT_EQ(reader.next_read_size(), big.size() - 20);   // the header said how much
    std::size_t want = reader.next_read_size();
    std::memcpy(reader.prepare(want), big.data() + 20, want);
    reader.commit(want);
    Header h;
    std::string_view body;
    ASSERT_EQ(reader.next(h, body), FrameReader::Next::frame);
    EXPECT_EQ(body.size(), 100000u);
    EXPECT_EQ(reader.next_read_size(), FrameReader::min_read);
}
