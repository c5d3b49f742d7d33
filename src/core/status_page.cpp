#include <agente/status.hpp>

#include <cstdio>

namespace agente {

namespace {

// Small, readable on a phone: the tables scroll sideways on their own instead of widening the page.
constexpr std::string_view style = R"(
body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:.5em 1em;max-width:70em;color:#222;background:#fafafa}
h1{font-size:1.3em}h2{font-size:1.1em;margin:1.2em 0 .3em;border-bottom:1px solid #ccc}
.scroll{overflow-x:auto}table{border-collapse:collapse;min-width:100%}
th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #e4e4e4;white-space:nowrap}
th{background:#eee}p{margin:.3em 0}button{font:inherit;padding:.2em .8em}
.msg{color:#a00}
)";

// The reset buttons: the admin token is asked for once per tab (the page itself may have come with
// the browser's Basic login, which a script cannot read) and sent as a Bearer header, never in a URL.
constexpr std::string_view script = R"(
document.addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-path]');
  if (!b) return;
  let token = sessionStorage.getItem('agente-admin-token');
  if (!token) token = prompt('Admin token');
  if (!token) return;
  const msg = document.getElementById('msg');
  try {
    const r = await fetch(b.dataset.path + encodeURIComponent(b.dataset.arg),
                          {method: 'POST', headers: {'Authorization': 'Bearer ' + token}});
    msg.textContent = b.textContent + ' ' + b.dataset.arg + ': ' + r.status + (r.ok ? ' OK' : ' refused');
    if (r.ok) sessionStorage.setItem('agente-admin-token', token);
    else sessionStorage.removeItem('agente-admin-token');
    if (r.ok) setTimeout(() => location.reload(), 500);
  } catch (err) { msg.textContent = String(err); }
});
)";

}  // namespace

std::string StatusPage::escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

void StatusPage::close_table() {
    if (in_table_) body_ += "</tbody></table></div>\n";
    in_table_ = false;
}

void StatusPage::section(std::string_view title) {
    close_table();
    body_ += "<h2>" + escape(title) + "</h2>\n";
}

void StatusPage::note(std::string_view text) {
    close_table();
    body_ += "<p>" + escape(text) + "</p>\n";
}

void StatusPage::table(std::initializer_list<std::string_view> headings) {
    close_table();
    body_ += "<div class=\"scroll\"><table><thead><tr>";
    for (auto h : headings) body_ += "<th>" + escape(h) + "</th>";
    body_ += "</tr></thead><tbody>\n";
    in_table_ = true;
}

void StatusPage::row(const std::vector<std::string>& cells, const StatusAction* action) {
    body_ += "<tr>";
    for (const auto& c : cells) body_ += "<td>" + escape(c) + "</td>";
    if (action)
        body_ += "<td><button type=\"button\" data-path=\"" + escape(action->path_prefix) + "\" data-arg=\"" +
                 escape(action->argument) + "\">" + escape(action->label) + "</button></td>";
    body_ += "</tr>\n";
}

std::string StatusPage::finish(std::string_view title, int refresh_seconds) {
    close_table();
    std::string t = escape(title);
    std::string out;
    out.reserve(body_.size() + style.size() + script.size() + 512);
    out += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
    out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<meta http-equiv=\"refresh\" content=\"" + std::to_string(refresh_seconds) + "\">\n";
    out += "<title>" + t + "</title>\n<style>" + std::string(style) + "</style>\n</head><body>\n";
    out += "<h1>" + t + "</h1>\n<p id=\"msg\" class=\"msg\"></p>\n";
    out += body_;
    out += "<p>This page reloads itself every " + std::to_string(refresh_seconds) + " s.</p>\n";
    out += "<script>" + std::string(script) + "</script>\n</body></html>\n";
    return out;
}

std::string human_duration(long long seconds) {
    if (seconds < 0) seconds = 0;
    auto two = [](long long a, const char* ua, long long b, const char* ub) {
        return std::to_string(a) + ua + " " + std::to_string(b) + ub;
    };
    if (seconds < 60) return std::to_string(seconds) + "s";
    if (seconds < 3600) return two(seconds / 60, "m", seconds % 60, "s");
    if (seconds < 86400) return two(seconds / 3600, "h", seconds % 3600 / 60, "m");
    return two(seconds / 86400, "d", seconds % 86400 / 3600, "h");
}

std::string human_bytes(unsigned long long bytes) {
    if (bytes < 1024) return std::to_string(bytes) + " B";
    const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = double(bytes) / 1024;
    int u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
    return buf;
}

}  // namespace agente
