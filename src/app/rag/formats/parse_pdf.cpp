// PDF through poppler-cpp: each page's text in reading order (poppler's non-raw, non-physical
// layout: columns one after the other), split into paragraphs at blank lines. A page is the PDF's
// unit of citation, so every block carries its page number. Poppler has no heading structure to give
// (its outline has no page targets in the C++ API), so PDF blocks have no heading path.
#include "app/rag/document.hpp"

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <climits>
#include <memory>
#include <mutex>

namespace agente::rag {

namespace {

// Poppler prints every complaint about a malformed file on stderr; they go to the debug log instead.
void quiet_poppler() {
    static std::once_flag once;
    std::call_once(once, [] {
        poppler::set_debug_error_function([](const std::string& msg, void*) { spdlog::debug("poppler: {}", msg); },
                                          nullptr);
    });
}

std::string utf8(const poppler::ustring& s) {
    poppler::byte_array b = s.to_utf8();
    return std::string(b.begin(), b.end());
}

// One paragraph's lines as running text: a word hyphenated at a line's end is joined again.
std::string join_lines(const std::string& para) {
    std::string out;
    std::size_t pos = 0;
    while (pos < para.size()) {
        std::size_t nl = para.find('\n', pos);
        if (nl == std::string::npos) nl = para.size();
        std::string line = trim(std::string_view(para).substr(pos, nl - pos));
        pos = nl + 1;
        if (line.empty()) continue;
        if (!out.empty()) {
            bool hyphen = out.size() > 1 && out.back() == '-' && std::isalpha(static_cast<unsigned char>(out[out.size() - 2])) &&
                          std::islower(static_cast<unsigned char>(line[0]));
            if (hyphen) out.pop_back();
            else out.push_back(' ');
        }
        out += line;
    }
    return out;
}

}  // namespace

Document parse_pdf(std::string_view bytes) {
    quiet_poppler();
    if (bytes.size() > std::size_t(INT_MAX)) throw IngestError("invalid_file", "the PDF is too large");
    std::unique_ptr<poppler::document> d(poppler::document::load_from_raw_data(bytes.data(), int(bytes.size())));
    if (!d) throw IngestError("invalid_file", "not a readable PDF (damaged or not a PDF)");
    if (d->is_locked()) throw IngestError("invalid_file", "the PDF is encrypted (a password is needed to read it)");
    Document doc;
    doc.format = Format::pdf;
    doc.title = collapse_blanks(utf8(d->get_title()));
    int pages = d->pages();
    for (int i = 0; i < pages; ++i) {
        std::unique_ptr<poppler::page> p(d->create_page(i));
        if (!p) continue;
        std::string text = utf8(p->text(poppler::rectf(), poppler::page::non_raw_non_physical_layout));
        std::string para;
        std::size_t pos = 0;
        auto flush = [&] {
            std::string t = join_lines(para);
            para.clear();
            if (!t.empty()) doc.blocks.push_back({std::move(t), {}, i + 1});
        };
        while (pos < text.size()) {
            std::size_t nl = text.find('\n', pos);
            if (nl == std::string::npos) nl = text.size();
            std::string_view line(text.data() + pos, nl - pos);
            pos = nl + 1;
            if (trim(line).empty()) flush();
            else para.append(line).push_back('\n');
        }
        flush();
    }
    if (doc.blocks.empty() && pages > 0)
        throw IngestError("invalid_file", "the PDF has no extractable text (scanned images need OCR first)");
    return doc;
}

}  // namespace agente::rag
