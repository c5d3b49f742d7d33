// The gateway's SSE splitter (src/app/gateway/sse.*) on any upstream bytes, cut into any pieces.
// Besides the sanitizers' checks: the events do not depend on where the pieces were cut, and each is
// whole (ends in its blank line, "\n" line ends only).
#include "app/gateway/sse.hpp"
#include "require.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using agente::gateway::SseSplitter;

namespace {

std::vector<std::string> split_all(std::string_view body, std::string_view cuts, std::string& pending) {
    SseSplitter s;
    std::vector<std::string> events;
    for (unsigned char cut : cuts) {  // each byte a piece's length (0: an empty piece)
        std::size_t n = std::min<std::size_t>(cut % 64, body.size());
        for (std::string_view e : s.feed(body.substr(0, n))) events.emplace_back(e);  // views: valid until the next feed
        body.remove_prefix(n);
    }
    for (std::string_view e : s.feed(body)) events.emplace_back(e);
    pending = s.pending();
    return events;
}

// event_data()'s meaning, written the plain way (a string built line by line): the one under test
// returns a view into the event or into a string it reuses between events.
std::string data_lines(std::string_view event) {
    std::string data;
    bool first = true;
    while (!event.empty()) {
        auto nl = event.find('\n');
        std::string_view line = event.substr(0, nl);
        event.remove_prefix(nl == std::string_view::npos ? event.size() : nl + 1);
        if (!line.starts_with("data:")) continue;
        line.remove_prefix(5);
        if (line.starts_with(' ')) line.remove_prefix(1);
        if (!first) data += '\n';
        data += line;
        first = false;
    }
    return data;
}

}  // namespace

// Input: the cut lengths, a 0xff byte, the body (no 0xff: the whole input is the body, cut nowhere).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto mark = in.find('\xff');
    std::string_view cuts = mark == std::string_view::npos ? std::string_view() : in.substr(0, mark);
    std::string_view body = mark == std::string_view::npos ? in : in.substr(mark + 1);

    std::string whole_pending, cut_pending;
    auto whole = split_all(body, {}, whole_pending);
    auto cut = split_all(body, cuts, cut_pending);
    FUZZ_REQUIRE(whole == cut);
    // A CR at the very end of a piece waits for a possible LF, so only what was completed compares.
    FUZZ_REQUIRE(whole_pending == cut_pending);
    std::string joined;   // one for all events, as a receiver keeps it
    for (const auto& e : whole) {
        FUZZ_REQUIRE(e.size() >= 2 && e.ends_with("\n\n"));
        FUZZ_REQUIRE(e.find('\r') == std::string::npos);
        FUZZ_REQUIRE(agente::gateway::event_data(e, joined) == data_lines(e));
    }
    return 0;
}
