// Which parser reads a file. Clients often send a generic content type (application/octet-stream,
// text/plain for Markdown), so the type decides only when it is specific, and the extension next.
#include "app/rag/document.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace agente::rag {

namespace {

// PDF readers accept the header anywhere in the first KiB (ISO 32000-1, Annex H.3).
constexpr std::size_t pdf_magic_window = 1024;

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return out;
}

// "text/markdown; charset=utf-8" → "text/markdown".
std::string media_type(std::string_view content_type) {
    std::string t = lower(content_type.substr(0, content_type.find(';')));
    return trim(t);
}

std::string extension(std::string_view filename) {
    std::size_t slash = filename.find_last_of("/\\");
    std::string_view base = slash == std::string_view::npos ? filename : filename.substr(slash + 1);
    std::size_t dot = base.rfind('.');
    if (dot == std::string_view::npos || dot == 0) return {};
    return lower(base.substr(dot + 1));
}

constexpr std::array markdown_ext{"md", "markdown", "mdown", "mkd", "mkdn"};
constexpr std::array html_ext{"html", "htm", "xhtml"};
// Plain text and source code, read as text (OpenAI's file search takes these too).
constexpr std::array text_ext{"txt", "text", "rst", "csv", "tsv", "log", "json", "jsonl", "yaml", "yml", "toml",
                              "ini", "conf", "cfg", "xml", "tex", "c", "h", "cc", "cpp", "hpp", "cxx", "py", "js",
                              "mjs", "ts", "go", "rs", "java", "kt", "rb", "php", "sh", "bash", "sql", "css", "cs",
                              "swift", "lua", "pl", "r", "scala", "org", "adoc"};

template <class A>
bool in(const A& list, const std::string& ext) {
    return std::find(list.begin(), list.end(), ext) != list.end();
}

bool looks_like_text(std::string_view head) { return head.find('\0') == std::string_view::npos; }

}  // namespace

std::string_view format_name(Format f) {
    switch (f) {
    case Format::text: return "text";
    case Format::markdown: return "markdown";
    case Format::html: return "html";
    case Format::pdf: return "pdf";
    }
    return "text";
}

Format detect_format(std::string_view content_type, std::string_view filename, std::string_view head) {
    if (head.substr(0, pdf_magic_window).find("%PDF-") != std::string_view::npos) return Format::pdf;
    std::string type = media_type(content_type);
    if (type == "application/pdf") return Format::pdf;
    if (type == "text/markdown" || type == "text/x-markdown") return Format::markdown;
    if (type == "text/html" || type == "application/xhtml+xml") return Format::html;
    std::string ext = extension(filename);
    if (in(markdown_ext, ext)) return Format::markdown;
    if (in(html_ext, ext)) return Format::html;
    if (ext == "pdf") return Format::pdf;
    if (in(text_ext, ext)) return Format::text;
    if (type == "text/plain" || (type.rfind("text/", 0) == 0 && ext.empty())) return Format::text;
    if (ext.empty() && (type.empty() || type == "application/octet-stream") && looks_like_text(head))
        return Format::text;
    std::string what = type.empty() ? std::string() : type;
    if (!ext.empty()) what += (what.empty() ? "." : ", .") + ext;
    if (what.empty()) what = "binary content";
    throw IngestError("unsupported_file", "unsupported file type (" + what +
                                              "): text, Markdown, HTML and PDF files can be ingested");
}

Document parse_document(std::string_view bytes, Format format) {
    if (format == Format::text) return parse_text(bytes);
    return parse_formatted(bytes, format);
}

}  // namespace agente::rag
