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
    // Adds bytes; returns the events completed by them, each with its terminating blank line,
    // normalised to "\n" line ends.
    std::vector<std::string> feed(std::string_view bytes);
    // Whatever is left without a blank line (an upstream that ended mid-event).
    const std::string& pending() const { return buffer_; }

private:
    std::string buffer_;
    bool after_cr_ = false;
};

// True for the event that ends an OpenAI stream: "data: [DONE]".
bool is_done_event(std::string_view event);

// The "data:" payload of an event (several data lines joined by "\n"); "" when it has none.
std::string event_data(std::string_view event);

// An SSE comment: ignored by every client, but it keeps proxies from timing the connection out.
inline constexpr std::string_view keepalive_comment = ": keep-alive\n\n";

// One event carrying `payload` as its data line.
std::string data_event(std::string_view payload);

}  // namespace agente::gateway
