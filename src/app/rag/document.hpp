// A file as the chunker sees it: blocks of text (paragraphs, list items, code, table rows) in
// reading order, each with the path of headings it sits under and, for a PDF, its page. Parsing is
// format-specific (parse_*.cpp); what comes out is the same shape for every format.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace agente::rag {

enum class Format { text, markdown, html, pdf };
std::string_view format_name(Format f);

struct Block {
    std::string text;                   // trimmed, never empty
    std::vector<std::string> headings;  // outermost first; empty before the first heading
    int page = 0;                       // 1-based for a PDF, 0 otherwise
};

struct Document {
    Format format = Format::text;
    std::string title;                  // <title>, the PDF's Title, or ""
    std::vector<Block> blocks;
};

// Why a file cannot be ingested, with OpenAI's last_error codes: "unsupported_file" (a type we do
// not read) or "invalid_file" (one we read that is broken). The message says which and why.
class IngestError : public std::runtime_error {
public:
    IngestError(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
    const std::string& code() const { return code_; }

private:
    std::string code_;
};

// The format of a file from what is known of it, strongest evidence first: PDF's magic bytes; a
// specific content type (Markdown, HTML, PDF); the filename's extension; text/plain; no extension
// and text content. `head` is the start of the file. Throws IngestError("unsupported_file").
Format detect_format(std::string_view content_type, std::string_view filename, std::string_view head);

// Throws IngestError("invalid_file") for a file its format's parser refuses, and
// IngestError("server_error") when the formats module (formats/module.hpp) cannot be loaded.
Document parse_document(std::string_view bytes, Format format);

// The parsers, one per file. Markdown, HTML and PDF are in the formats module (formats/), which
// parse_document opens in the process that first needs it; only a test links them in directly.
Document parse_text(std::string_view bytes);
Document parse_markdown(std::string_view bytes);
Document parse_html(std::string_view bytes);
Document parse_pdf(std::string_view bytes);
// Markdown, HTML or PDF through the formats module (formats_loader.cpp).
Document parse_formatted(std::string_view bytes, Format format);

// Text files as UTF-8: a BOM dropped, UTF-16 (with its BOM) converted, anything else not valid UTF-8
// read as Windows-1252. Throws IngestError("invalid_file") for binary content (NUL bytes).
std::string text_as_utf8(std::string_view bytes);

// Runs of blanks (spaces, tabs, newlines) as one space, none at either end.
std::string collapse_blanks(std::string_view s);
std::string trim(std::string_view s);

}  // namespace agente::rag
