// Server-Sent Events framing: splits an upstream body, arriving in arbitrary pieces, into whole
// events, so each is relayed the moment its blank line arrives, and none is cut in half.
#pragma once

#include <agente/handler.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace agente::gateway {

class SseSplitter {
public:
    SseSplitter() = default;
    // Its events are views into it: a copy's or a moved-to splitter's would point elsewhere.
    SseSplitter(const SseSplitter&) = delete;
    SseSplitter& operator=(const SseSplitter&) = delete;

    // Adds bytes; returns the events completed by them, each with its terminating blank line,
    // normalised to "\n" line ends. Views into the splitter, valid until the next feed(): a stream
    // of a thousand events is a thousand copies and allocations fewer than events as strings.
    const std::vector<std::string_view>& feed(std::string_view bytes);
    // Whatever is left without a blank line (an upstream that ended mid-event).
    std::string_view pending() const { return std::string_view(buffer_).substr(consumed_); }

private:
    std::string buffer_;
    std::size_t consumed_ = 0;   // buffer_'s bytes handed out as events: dropped by the next feed()
    std::vector<std::string_view> events_;
    bool after_cr_ = false;
};

// The "data:" payload of an event (several data lines joined by "\n"; "" when it has none; "[DONE]"
// ends an OpenAI stream). A view into `event` when it has one data line (OpenAI's events all do),
// else the lines joined in `joined` (so `event` must not be a view into `joined`).
std::string_view event_data(std::string_view event, std::string& joined);

// An SSE comment: ignored by every client, but it keeps proxies from timing the connection out.
inline constexpr std::string_view keepalive_comment = ": keep-alive\n\n";

// One event carrying `payload` as its data line.
std::string data_event(std::string_view payload);

}  // namespace agente::gateway
