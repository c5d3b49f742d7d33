#include "app/gateway/sse.hpp"

namespace agente::gateway {

std::string data_event(std::string_view payload) {
    std::string e;
    e.reserve(payload.size() + 8);
    return e.append("data: ").append(payload).append("\n\n");
}


std::vector<std::string> SseSplitter::feed(std::string_view bytes) {
    std::vector<std::string> events;
    // CR LF and lone CR are both legal line ends; normalise so one search finds the blank line.
    // A CR LF split across two pieces must still count once, hence the flag kept between calls.
    // Copied a run at a time between CRs (most upstreams send none): a byte at a time cost ~15
    // instructions a byte, a 1,000-token answer's ~100 KB of events included.
    if (bytes.empty()) return events;  // a CR at the end of the last piece still waits for its LF
    if (after_cr_ && bytes.front() == '\n') bytes.remove_prefix(1);
    after_cr_ = false;
    while (!bytes.empty()) {
        auto cr = bytes.find('\r');
        buffer_.append(bytes.substr(0, cr));
        if (cr == std::string_view::npos) break;
        buffer_.push_back('\n');
        bytes.remove_prefix(cr + 1);
        after_cr_ = bytes.empty();
        if (!bytes.empty() && bytes.front() == '\n') bytes.remove_prefix(1);
    }
    std::size_t start = 0, end;
    while ((end = buffer_.find("\n\n", start)) != std::string::npos) {
        // Leading blank lines between events (keep-alive padding from some upstreams) carry nothing.
        std::string_view ev(buffer_.data() + start, end + 2 - start);
        start = end + 2;
        if (ev.find_first_not_of('\n') != std::string_view::npos) events.emplace_back(ev);
    }
    buffer_.erase(0, start);
    return events;
}

std::string event_data(std::string_view event) {
    std::string data;
    bool first = true;
    while (!event.empty()) {
        auto nl = event.find('\n');
        std::string_view line = event.substr(0, nl);
        event.remove_prefix(nl == std::string_view::npos ? event.size() : nl + 1);
        if (line.rfind("data:", 0) != 0) continue;
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (!first) data.push_back('\n');
        data.append(line);
        first = false;
    }
    return data;
}

bool is_done_event(std::string_view event) { return event_data(event) == "[DONE]"; }

}  // namespace agente::gateway
