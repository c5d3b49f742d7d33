// One piece of a streamed body in HTTP/1.1's chunked coding (RFC 9112 section 7.1), as one gather
// write: the held head (if any), the chunk's size line, its data and end, and the last chunk when
// the body ends. Beast's make_chunk() says the same, but each call allocates its size line and
// its nested buffers_cat sequence is walked anew for every write; the session writes its heads
// itself already, and the framing is this small. tests/unit/chunk_frame_test.cpp holds it to
// Beast's bytes.
#pragma once

#include <boost/asio/buffer.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <string_view>

namespace agente::core {

class ChunkFrame {
public:
    // The buffers point into this object and into `head` and `data`: all must outlive the write.
    // An empty `data` is no chunk (a zero size would end the body): with `last`, the end alone.
    std::array<boost::asio::const_buffer, 5> frame(boost::asio::const_buffer head, boost::asio::const_buffer data,
                                                   bool last) {
        using boost::asio::buffer;
        static constexpr std::string_view crlf = "\r\n", last_chunk = "0\r\n\r\n";
        std::size_t line = 0, end = 0;
        if (data.size() > 0) {
            auto [p, ec] = std::to_chars(size_line_.data(), size_line_.data() + size_line_.size(), data.size(), 16);
            p[0] = '\r';
            p[1] = '\n';
            line = std::size_t(p + 2 - size_line_.data());
            end = crlf.size();
        }
        return {head, buffer(size_line_.data(), line), data, buffer(crlf.data(), end),
                buffer(last_chunk.data(), last ? last_chunk.size() : 0)};
    }

private:
    std::array<char, 2 * sizeof(std::size_t) + 2> size_line_{};  // hex digits, CRLF
};

}  // namespace agente::core
