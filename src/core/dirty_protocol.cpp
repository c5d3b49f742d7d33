#include "core/dirty_protocol.hpp"

#include <algorithm>
#include <cstring>

namespace agente {

std::string_view to_string(DirtyErrc e) {
    switch (e) {
        case DirtyErrc::none: return "none";
        case DirtyErrc::timeout: return "timeout";
        case DirtyErrc::unavailable: return "unavailable";
        case DirtyErrc::job_failed: return "job_failed";
        case DirtyErrc::worker_died: return "worker_died";
        case DirtyErrc::cancelled: return "cancelled";
    }
    return "unknown";
}

}  // namespace agente

namespace agente::core::dirty {

namespace {

void put_u16(std::string& out, std::uint16_t v) {
    out += char(v >> 8);
    out += char(v & 0xff);
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += char((v >> shift) & 0xff);
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out += char((v >> shift) & 0xff);
}

std::uint64_t get_be(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    return v;
}

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

void put_header(std::string& out, FrameType type, std::uint64_t id, std::size_t body_length) {
    out += char(magic[0]);
    out += char(magic[1]);
    out += char(version);
    out += char(type);
    put_u32(out, std::uint32_t(body_length));
    put_u64(out, id);
}

// Error kinds on the wire, numbered on their own: DirtyErrc's order is free to change.
constexpr std::uint8_t wire_timeout = 1, wire_unavailable = 2, wire_job_failed = 3;

}  // namespace

ParsedHeader parse_header(const unsigned char* b) {
    ParsedHeader p;
    if (b[0] != magic[0] || b[1] != magic[1]) {
        p.error = "bad magic";
    } else if (b[2] != version) {
        p.error = "unsupported version";
    } else if (b[3] < std::uint8_t(FrameType::request) || b[3] > std::uint8_t(FrameType::cancel)) {
        p.error = "unknown frame type";
    } else {
        p.header.type = FrameType(b[3]);
        p.header.length = std::uint32_t(get_be(b + 4, 4));
        p.header.id = get_be(b + 8, 8);
        if (p.header.length > max_body) p.error = "frame too large";
    }
    return p;
}

std::string frame(FrameType type, std::uint64_t id, std::string_view body) {
    std::string out;
    out.reserve(header_size + body.size());
    put_header(out, type, id, body.size());
    out.append(body);
    return out;
}

std::string request_head(std::uint64_t id, const Request& r) {
    std::size_t fixed = 1 + 8 + 2;
    std::string out;
    out.reserve(header_size + fixed + r.kind.size());
    put_header(out, FrameType::request, id, fixed + r.kind.size() + r.payload.size());
    out += char(r.streamed ? 1 : 0);
    put_u64(out, std::uint64_t(r.deadline_ns));
    put_u16(out, std::uint16_t(r.kind.size()));
    out.append(r.kind);
    return out;
}

std::optional<Request> parse_request(std::string_view body) {
    constexpr std::size_t fixed = 1 + 8 + 2;
    if (body.size() < fixed) return std::nullopt;
    const unsigned char* b = bytes_of(body);
    Request r;
    if (b[0] > 1) return std::nullopt;   // unknown flags: a newer caller than this worker
    r.streamed = b[0] & 1;
    r.deadline_ns = std::int64_t(get_be(b + 1, 8));
    std::size_t kind_length = get_be(b + 9, 2);
    if (kind_length == 0 || body.size() < fixed + kind_length) return std::nullopt;
    r.kind = body.substr(fixed, kind_length);
    r.payload = body.substr(fixed + kind_length);
    return r;
}

std::string error_frame(std::uint64_t id, const Error& e) {
    std::string body;
    std::uint8_t kind = e.kind == DirtyErrc::timeout ? wire_timeout
                      : e.kind == DirtyErrc::unavailable ? wire_unavailable : wire_job_failed;
    std::string_view code = e.code.substr(0, 0xffff);
    body += char(kind);
    put_u16(body, std::uint16_t(code.size()));
    body.append(code);
    body.append(e.message);
    return frame(FrameType::error, id, body);
}

std::optional<Error> parse_error(std::string_view body) {
    if (body.size() < 3) return std::nullopt;
    const unsigned char* b = bytes_of(body);
    Error e;
    switch (b[0]) {
        case wire_timeout: e.kind = DirtyErrc::timeout; break;
        case wire_unavailable: e.kind = DirtyErrc::unavailable; break;
        case wire_job_failed: e.kind = DirtyErrc::job_failed; break;
        default: return std::nullopt;
    }
    std::size_t code_length = get_be(b + 1, 2);
    if (body.size() < 3 + code_length) return std::nullopt;
    e.code = body.substr(3, code_length);
    e.message = body.substr(3 + code_length);
    return e;
}

std::size_t FrameReader::next_read_size() const {
    std::size_t need = header_size;
    if (size_ >= header_size) {
        ParsedHeader p = parse_header(reinterpret_cast<const unsigned char*>(buffer_.get() + begin_));
        if (!p.error) need = header_size + p.header.length;
    }
    return std::max(min_read, need > size_ ? need - size_ : 0);
}

char* FrameReader::prepare(std::size_t want) {
    if (size_ == 0) begin_ = 0;
    if (begin_ + size_ + want > capacity_) {
        if (size_ + want <= capacity_) {
            std::memmove(buffer_.get(), buffer_.get() + begin_, size_);   // the unread bytes to the front
        } else {
            std::size_t capacity = std::max(size_ + want, 2 * capacity_);
            auto bigger = std::make_unique_for_overwrite<char[]>(capacity);
            if (size_) std::memcpy(bigger.get(), buffer_.get() + begin_, size_);
            buffer_ = std::move(bigger);
            capacity_ = capacity;
        }
        begin_ = 0;
    }
    return buffer_.get() + begin_ + size_;
}

FrameReader::Next FrameReader::next(Header& header, std::string_view& body) {
    if (error_) return Next::bad;
    if (size_ < header_size) return Next::need_more;
    const auto* start = reinterpret_cast<const unsigned char*>(buffer_.get() + begin_);
    ParsedHeader p = parse_header(start);
    if (p.error) {
        error_ = p.error;
        return Next::bad;
    }
    if (size_ < header_size + p.header.length) return Next::need_more;
    header = p.header;
    body = std::string_view(buffer_.get() + begin_ + header_size, p.header.length);
    begin_ += header_size + p.header.length;
    size_ -= header_size + p.header.length;
    return Next::frame;
}

}  // namespace agente::core::dirty
