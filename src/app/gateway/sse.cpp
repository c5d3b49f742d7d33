#include "app/gateway/sse.hpp"

namespace agente::gateway {

std::string data_event(std::string_view payload) {
    std::string e;
    e.reserve(payload.size() + 8);
    return e.append("data: ").append(payload).append("\n\n");
}


const std::vector<std::string_view>& SseSplitter::feed(std::string_view bytes) {
    buffer_.erase(0, consumed_);   // the last call's events are no longer looked at
    consumed_ = 0;
    events_.clear();
    // CR LF and lone CR are both legal line ends; normalise so one search finds the blank line.
    // A CR LF split across two pieces must still count once, hence the flag kept between calls.
    // Copied a run at a time between CRs (most upstreams send none): a byte at a time cost ~15
    // instructions a byte, a 1,000-token answer's ~100 KB of events included.
    if (bytes.empty()) return events_;  // a CR at the end of the last piece still waits for its LF
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
    std::size_t end;
    while ((end = buffer_.find("\n\n", consumed_)) != std::string::npos) {
        // Leading blank lines between events (keep-alive padding from some upstreams) carry nothing.
        std::string_view ev(buffer_.data() + consumed_, end + 2 - consumed_);
        consumed_ = end + 2;
        if (ev.find_first_not_of('\n') != std::string_view::npos) events_.push_back(ev);
    }
    return events_;
}

std::string_view event_data(std::string_view event, std::string& joined) {
    std::string_view data;
    int lines = 0;
    while (!event.empty()) {
        auto nl = event.find('\n');
        std::string_view line = event.substr(0, nl);
        event.remove_prefix(nl == std::string_view::npos ? event.size() : nl + 1);
        if (line.rfind("data:", 0) != 0) continue;
        line.remove_prefix(5);
        if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
        if (++lines == 1) {
            data = line;
            continue;
        }
        if (lines == 2) joined.assign(data);
        joined.append("\n").append(line);
        data = joined;
    }
    return data;
}

}  // namespace agente::gateway
