// The dirty pool's frames (docs/dirty.md): a 16-byte header — magic "ah", version, type, body
// length (u32), request id (u64), big-endian — then the body. One call per connection: the caller
// sends REQUEST (and maybe CANCEL); the dirty worker answers RESPONSE or ERROR for a whole call,
// CHUNK... then END or ERROR for a streamed one. Pure functions, no I/O: both ends and the unit
// tests use them.
#pragma once

#include <agente/dirty.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agente::core::dirty {

inline constexpr std::uint8_t magic[2] = {'a', 'h'};
inline constexpr std::uint8_t version = 1;
inline constexpr std::size_t header_size = 16;
// A body larger than this is refused before it is read (a bad peer cannot make us allocate more).
inline constexpr std::uint32_t max_body = 64u << 20;

enum class FrameType : std::uint8_t { request = 1, response = 2, error = 3, chunk = 4, end = 5, cancel = 6 };

struct Header {
    FrameType type = FrameType::request;
    std::uint32_t length = 0;
    std::uint64_t id = 0;
};

// The header at `bytes` (header_size of them), or why it is not one.
struct ParsedHeader {
    Header header;
    const char* error = nullptr;   // "bad magic", "unsupported version", "unknown frame type", "frame too large"
};
ParsedHeader parse_header(const unsigned char* bytes);

// A frame with `body` (header + body, one buffer).
std::string frame(FrameType type, std::uint64_t id, std::string_view body = {});

// ---- REQUEST ----------------------------------------------------------------------------------
// Body: u8 flags (bit 0: streamed), i64 deadline (CLOCK_MONOTONIC ns; 0: none), u16 kind length,
// the kind, then the payload to the end.

struct Request {
    bool streamed = false;
    std::int64_t deadline_ns = 0;
    std::string_view kind;
    std::string_view payload;
};

// Everything of a REQUEST frame up to the payload, which is sent after it as is (no copy).
std::string request_head(std::uint64_t id, const Request& request);
std::optional<Request> parse_request(std::string_view body);

// ---- ERROR ------------------------------------------------------------------------------------
// Body: u8 kind (1 timeout, 2 unavailable, 3 job_failed), u16 code length, the code, the message.

struct Error {
    DirtyErrc kind = DirtyErrc::job_failed;
    std::string_view code;
    std::string_view message;
};

std::string error_frame(std::uint64_t id, const Error& error);
std::optional<Error> parse_error(std::string_view body);

// ---- the stream of bytes from the other end ---------------------------------------------------

// Collects bytes as they are read and cuts them into frames. The buffer is not zero-filled and
// grows only to what the frame under way needs (its header says how much): a 64 KiB zeroed buffer
// per call cost more than the call itself.
class FrameReader {
public:
    // The most to read next: at least min_read, and all the frame under way still lacks.
    std::size_t next_read_size() const;
    // Room for a read of `want` bytes, to be followed by commit(n).
    char* prepare(std::size_t want);
    void commit(std::size_t n) { size_ += n; }

    enum class Next { frame, need_more, bad };
    // The next whole frame: its header and a view of its body, valid until the next prepare().
    Next next(Header& header, std::string_view& body);
    const char* error() const { return error_; }

    static constexpr std::size_t min_read = 4096;

private:
    std::unique_ptr<char[]> buffer_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0, size_ = 0;   // unread bytes: buffer_[begin_, begin_ + size_)
    const char* error_ = nullptr;
};

}  // namespace agente::core::dirty
