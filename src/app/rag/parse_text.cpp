// Plain text: paragraphs are separated by blank lines; the text's own line breaks stay inside them.
// Also the encoding helpers every text-based parser uses.
#include "app/rag/document.hpp"

#include <iconv.h>
#include <simdjson.h>

#include <cerrno>
#include <memory>

namespace agente::rag {

namespace {

bool blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// `bytes` in encoding `from` as UTF-8, by glibc's iconv; throws IngestError when they are not.
std::string convert(std::string_view bytes, const char* from) {
    iconv_t cd = iconv_open("UTF-8", from);
    if (cd == iconv_t(-1)) throw IngestError("invalid_file", std::string("no converter from ") + from);
    std::unique_ptr<void, int (*)(iconv_t)> guard(cd, iconv_close);
    std::string out(bytes.size() * 2 + 16, '\0');
    char* in = const_cast<char*>(bytes.data());
    std::size_t in_left = bytes.size();
    std::size_t done = 0;
    while (in_left > 0) {
        char* o = out.data() + done;
        std::size_t o_left = out.size() - done;
        std::size_t rc = iconv(cd, &in, &in_left, &o, &o_left);
        done = out.size() - o_left;
        if (rc != std::size_t(-1)) break;
        if (errno == E2BIG) {
            out.resize(out.size() * 2);
            continue;
        }
        throw IngestError("invalid_file", std::string("the text is not valid ") + from);
    }
    out.resize(done);
    return out;
}

}  // namespace

std::string trim(std::string_view s) {
    std::size_t b = 0, e = s.size();
    while (b < e && blank(s[b])) ++b;
    while (e > b && blank(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
}

std::string collapse_blanks(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    bool pending = false;
    for (char c : s) {
        if (blank(c)) {
            pending = !out.empty();
            continue;
        }
        if (pending) out.push_back(' ');
        pending = false;
        out.push_back(c);
    }
    return out;
}

std::string text_as_utf8(std::string_view bytes) {
    if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
    else if (bytes.substr(0, 2) == "\xFF\xFE") return convert(bytes.substr(2), "UTF-16LE");
    else if (bytes.substr(0, 2) == "\xFE\xFF") return convert(bytes.substr(2), "UTF-16BE");
    if (bytes.find('\0') != std::string_view::npos)
        throw IngestError("invalid_file", "binary content (NUL bytes) in a file of a text type");
    if (simdjson::validate_utf8(bytes.data(), bytes.size())) return std::string(bytes);
    return convert(bytes, "WINDOWS-1252");
}

Document parse_text(std::string_view bytes) {
    std::string text = text_as_utf8(bytes);
    Document doc;
    doc.format = Format::text;
    std::size_t pos = 0;
    std::string para;
    auto flush = [&] {
        std::string t = trim(para);
        if (!t.empty()) doc.blocks.push_back({std::move(t), {}, 0});
        para.clear();
    };
    while (pos <= text.size()) {
        std::size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + pos, nl - pos);
        if (trim(line).empty()) flush();
        else para.append(line).push_back('\n');
        pos = nl + 1;
    }
    flush();
    return doc;
}

}  // namespace agente::rag
