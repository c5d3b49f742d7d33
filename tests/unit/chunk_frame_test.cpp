// A streamed body's framing, byte for byte what Beast's chunk serialisation writes.
#include "core/chunk_frame.hpp"

#include <gtest/gtest.h>

#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/chunk_encode.hpp>

#include <string>

using agente::core::ChunkFrame;
using boost::asio::buffer;
using boost::beast::buffers_cat;
using boost::beast::buffers_to_string;
namespace http = boost::beast::http;

namespace {

std::string framed(std::string_view head, std::string_view data, bool last) {
    ChunkFrame f;
    return buffers_to_string(f.frame(buffer(head.data(), head.size()), buffer(data.data(), data.size()), last));
}

}  // namespace

TEST(ChunkFrame, AChunkIsWhatBeastWrites) {
    for (std::size_t size : {1, 9, 15, 16, 255, 4096, 70000}) {
        std::string data(size, 'x');
        auto beast = buffers_to_string(http::make_chunk(buffer(data)));
        EXPECT_EQ(framed("", data, false), beast) << size;
    }
    EXPECT_EQ(framed("", "hello", false), "5\r\nhello\r\n");
}

TEST(ChunkFrame, TheLastChunkAloneOrAfterData) {
    EXPECT_EQ(framed("", "", true), buffers_to_string(http::make_chunk_last()));
    std::string data = "the end";
    auto beast = buffers_to_string(buffers_cat(http::make_chunk(buffer(data)), http::make_chunk_last()));
    EXPECT_EQ(framed("", data, true), beast);
}

TEST(ChunkFrame, TheHeldHeadGoesFirst) {
    EXPECT_EQ(framed("HTTP/1.1 200 OK\r\n\r\n", "ab", false), "HTTP/1.1 200 OK\r\n\r\n2\r\nab\r\n");
    EXPECT_EQ(framed("H\r\n\r\n", "", true), "H\r\n\r\n0\r\n\r\n");
}

TEST(ChunkFrame, NoDataAndNoEndIsNothing) {
    // write_chunks() never asks for it; the frame would still be empty, not a premature "0".
    EXPECT_EQ(framed("", "", false), "");
}

TEST(ChunkFrame, TheLargestSizeFitsItsLine) {
    ChunkFrame f;
    std::size_t huge = ~std::size_t(0);
    // A buffer that claims the largest size; only the size line is read.
    auto parts = f.frame(buffer("", 0), boost::asio::const_buffer(nullptr, huge), false);
    std::string line(static_cast<const char*>(parts[1].data()), parts[1].size());
    EXPECT_EQ(line, "ffffffffffffffff\r\n");
}
