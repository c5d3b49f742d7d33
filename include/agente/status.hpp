// GET /status: one HTML page for a person, built by whichever worker answers from the same shared
// memory as GET /metrics (the core's sections, then the app's, App::write_status). The builder
// escapes every text it is given (provider and model names come from server.conf), writes no
// external reference, and keeps its script and style inline, so that a strict Content-Security-Policy
// can forbid everything else.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace agente {

// A button in a table row: POSTs to `path_prefix` + the URL-encoded `argument` with the admin token
// as a Bearer header (asked for once per browser tab), then reloads the page (the breakers' reset).
struct StatusAction {
    std::string label;
    std::string path_prefix;
    std::string argument;
};

class StatusPage {
public:
    // A heading; the tables and notes after it belong to it.
    void section(std::string_view title);
    // A line of text under the current section.
    void note(std::string_view text);
    // A table with these column headings; rows follow.
    void table(std::initializer_list<std::string_view> headings);
    // One row of the current table, a cell per heading, and an optional button after them.
    void row(const std::vector<std::string>& cells, const StatusAction* action = nullptr);

    // The whole document: `title`, the sections so far, reloading itself every `refresh_seconds`.
    std::string finish(std::string_view title, int refresh_seconds);

    // Text as HTML character data or a quoted attribute value: & < > " ' replaced.
    static std::string escape(std::string_view text);

    // Content-Security-Policy for the page: nothing from anywhere but its own inline style and
    // script, and fetches to its own origin (the reset button).
    static constexpr std::string_view content_security_policy =
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    static constexpr std::string_view content_type = "text/html; charset=utf-8";

private:
    void close_table();
    std::string body_;
    bool in_table_ = false;
};

// A duration in seconds as a person reads it: "42s", "3m 7s", "5h 2m", "3d 4h".
std::string human_duration(long long seconds);
// Bytes as a person reads them: "812 B", "3.4 MiB".
std::string human_bytes(unsigned long long bytes);

}  // namespace agente
