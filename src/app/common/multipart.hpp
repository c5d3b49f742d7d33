// multipart/form-data request bodies (RFC 7578 over RFC 2046's multipart syntax), for uploads such as
// OpenAI's POST /v1/files. Neither Boost nor Beast parses them and no Debian library fits a server
// that already holds the whole body; this parser is small, allocation-light (parts are views into the
// body) and strict where leniency would be ambiguous: a body without its closing delimiter, a part
// without a Content-Disposition name, or more parts than allowed is refused with a reason.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agente::app {

struct FormPart {
    std::string name;             // Content-Disposition's name
    std::string filename;         // its filename, "" when the part is a plain field
    bool has_filename = false;
    std::string content_type;     // the part's Content-Type, "" when absent
    std::string_view data;        // the part's bytes, a view into the body
};

// The boundary of a "multipart/form-data; boundary=..." Content-Type; nullopt for another type or a
// missing or malformed boundary (RFC 2046: 1 to 70 characters).
std::optional<std::string> form_boundary(std::string_view content_type);

// The parts of `body`; nullopt with `problem` set when the body is not well-formed multipart with
// that boundary, or has more than `max_parts` parts.
std::optional<std::vector<FormPart>> parse_form(std::string_view body, std::string_view boundary, std::string& problem,
                                                std::size_t max_parts = 16);

// The first part named `name`, or null.
const FormPart* form_field(const std::vector<FormPart>& parts, std::string_view name);

}  // namespace agente::app
