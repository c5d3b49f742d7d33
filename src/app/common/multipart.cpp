#include "app/common/multipart.hpp"

#include "app/common/ascii.hpp"

namespace agente::app {

namespace {

// Header lines of one part, at most this many bytes in all: a part's headers are a few short lines.
constexpr std::size_t max_part_header_bytes = 8 * 1024;
constexpr std::size_t max_boundary = 70;

bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && istarts_with(a, b); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The parameters after a header value's first ';' ("form-data; name=\"a\"; filename=b"): a token or
// a quoted string (backslash escapes a character) per parameter. false on a broken quoted string.
template <class F>
bool each_parameter(std::string_view value, F on_param) {
    std::size_t i = value.find(';');
    while (i != std::string_view::npos && i < value.size()) {
        ++i;
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
        std::size_t eq = value.find('=', i);
        if (eq == std::string_view::npos) return true;
        std::string_view key = trim(value.substr(i, eq - i));
        i = eq + 1;
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
        std::string v;
        if (i < value.size() && value[i] == '"') {
            ++i;
            bool closed = false;
            for (; i < value.size(); ++i) {
                if (value[i] == '\\' && i + 1 < value.size()) {
                    v.push_back(value[++i]);
                } else if (value[i] == '"') {
                    closed = true;
                    ++i;
                    break;
                } else {
                    v.push_back(value[i]);
                }
            }
            if (!closed) return false;
            i = value.find(';', i);
        } else {
            std::size_t end = value.find(';', i);
            v = std::string(trim(value.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i)));
            i = end;
        }
        on_param(key, std::move(v));
    }
    return true;
}

// One part's header block (without the blank line) into `part`.
bool read_headers(std::string_view block, FormPart& part, std::string& problem) {
    bool disposition = false;
    while (!block.empty()) {
        std::size_t eol = block.find("\r\n");
        std::string_view line = block.substr(0, eol);
        block.remove_prefix(eol == std::string_view::npos ? block.size() : eol + 2);
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            problem = "a part's header line has no ':'";
            return false;
        }
        std::string_view name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
        if (iequals(name, "Content-Type")) {
            part.content_type = std::string(value);
        } else if (iequals(name, "Content-Disposition")) {
            if (!istarts_with(value, "form-data")) {
                problem = "a part's Content-Disposition is not form-data";
                return false;
            }
            disposition = true;
            bool ok = each_parameter(value, [&](std::string_view key, std::string v) {
                if (iequals(key, "name")) {
                    part.name = std::move(v);
                } else if (iequals(key, "filename")) {
                    part.filename = std::move(v);
                    part.has_filename = true;
                }
            });
            if (!ok) {
                problem = "a part's Content-Disposition has an unterminated quoted string";
                return false;
            }
        }
    }
    if (!disposition || part.name.empty()) {
        problem = "a part has no Content-Disposition with a name";
        return false;
    }
    return true;
}

}  // namespace

std::optional<std::string> form_boundary(std::string_view content_type) {
    std::string_view type = trim(content_type.substr(0, content_type.find(';')));
    if (!iequals(type, "multipart/form-data")) return std::nullopt;
    std::optional<std::string> boundary;
    bool ok = each_parameter(content_type, [&](std::string_view key, std::string v) {
        if (iequals(key, "boundary")) boundary = std::move(v);
    });
    if (!ok || !boundary || boundary->empty() || boundary->size() > max_boundary) return std::nullopt;
    return boundary;
}

std::optional<std::vector<FormPart>> parse_form(std::string_view body, std::string_view boundary, std::string& problem,
                                                std::size_t max_parts) {
    const std::string delimiter = "--" + std::string(boundary);
    const std::string next = "\r\n" + delimiter;
    // The first delimiter starts the body or a line (a preamble before it is ignored).
    std::size_t at = 0;
    if (body.substr(0, delimiter.size()) != delimiter) {
        at = body.find(next);
        if (at == std::string_view::npos) {
            problem = "the body has no multipart boundary \"" + std::string(boundary) + "\"";
            return std::nullopt;
        }
        at += 2;
    }
    std::vector<FormPart> parts;
    while (true) {
        at += delimiter.size();
        if (body.substr(at, 2) == "--") return parts;   // the closing delimiter; an epilogue is ignored
        while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
        if (body.substr(at, 2) != "\r\n") {
            problem = "a multipart boundary is not followed by a line end";
            return std::nullopt;
        }
        at += 2;
        if (parts.size() == max_parts) {
            problem = "more than " + std::to_string(max_parts) + " parts";
            return std::nullopt;
        }
        FormPart part;
        std::size_t headers_end = body.find("\r\n\r\n", at);
        if (body.substr(at, 2) == "\r\n") {
            headers_end = at;   // no header at all (refused below: it has no name)
        }
        if (headers_end == std::string_view::npos || headers_end - at > max_part_header_bytes) {
            problem = "a part's headers do not end (or exceed " + std::to_string(max_part_header_bytes) + " bytes)";
            return std::nullopt;
        }
        if (!read_headers(body.substr(at, headers_end - at), part, problem)) return std::nullopt;
        std::size_t data = headers_end == at ? at + 2 : headers_end + 4;
        std::size_t end = body.find(next, data);
        if (end == std::string_view::npos) {
            problem = "the multipart body ends without its closing boundary";
            return std::nullopt;
        }
        part.data = body.substr(data, end - data);
        parts.push_back(std::move(part));
        at = end + 2;
    }
}

const FormPart* form_field(const std::vector<FormPart>& parts, std::string_view name) {
    for (const FormPart& p : parts)
        if (p.name == name) return &p;
    return nullptr;
}

}  // namespace agente::app
