// HTML through libxml2's HTML parser (the one browsers' rules for broken markup are modelled on):
// h1–h6 make the heading path; block elements (p, li, pre, table rows, ...) end a block; scripts,
// styles, navigation and forms' controls are not text. Whitespace collapses as a browser shows it,
// except inside <pre>.
#include "app/rag/document.hpp"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <utility>

namespace agente::rag {

namespace {

// libxml2 itself refuses documents nested deeper than 256 without XML_PARSE_HUGE; this bound keeps
// our own recursion safe whatever a later libxml2 allows.
constexpr int max_depth = 512;

const std::set<std::string> skipped{"script", "style", "noscript", "template", "svg", "math", "iframe", "object",
                                    "embed", "canvas", "nav", "button", "select", "option", "textarea", "head"};
const std::set<std::string> blocks{"p", "div", "li", "ul", "ol", "pre", "blockquote", "section", "article", "main",
                                   "header", "footer", "aside", "table", "tr", "thead", "tbody", "tfoot", "dl",
                                   "dt", "dd", "figure", "figcaption", "hr", "address", "details", "summary",
                                   "caption", "body", "html", "form", "fieldset", "legend"};

std::string name_of(const xmlNode* n) { return n->name ? reinterpret_cast<const char*>(n->name) : ""; }

int heading_level(const std::string& name) {
    if (name.size() == 2 && name[0] == 'h' && name[1] >= '1' && name[1] <= '6') return name[1] - '0';
    return 0;
}

class Walker {
public:
    Document doc;

    void walk(const xmlNode* n, int depth) {
        for (; n; n = n->next) {
            if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
                if (n->content) target().append(reinterpret_cast<const char*>(n->content));
                continue;
            }
            if (n->type != XML_ELEMENT_NODE || depth >= max_depth) continue;
            std::string name = name_of(n);
            if (skipped.count(name)) continue;
            if (int level = heading_level(name)) {
                heading(level, n);
                continue;
            }
            if (name == "br") {
                target().append("\n");
                continue;
            }
            bool block = blocks.count(name) > 0;
            bool pre = name == "pre";
            if (block) flush();
            if (name == "li") buf_ = "- ";
            if (name == "td" || name == "th") {
                if (!buf_.empty()) buf_.append(" | ");
            }
            if (pre) ++pre_;
            walk(n->children, depth + 1);
            if (pre) --pre_;
            if (block) flush(pre);
        }
    }

    void flush(bool preformatted = false) {
        std::string t = preformatted || pre_ ? trim(buf_) : collapse_blanks(buf_);
        buf_.clear();
        if (t.empty() || t == "-") return;
        Block b;
        b.text = std::move(t);
        for (auto& [level, text] : path_) b.headings.push_back(text);
        doc.blocks.push_back(std::move(b));
    }

private:
    void heading(int level, const xmlNode* n) {
        flush();
        std::string h = collapse_blanks(text_of(n));
        while (!path_.empty() && path_.back().first >= level) path_.pop_back();
        if (!h.empty()) path_.emplace_back(level, std::move(h));
    }

    static std::string text_of(const xmlNode* n) {
        std::unique_ptr<xmlChar, void (*)(void*)> t(xmlNodeGetContent(n), xmlFree);
        return t ? reinterpret_cast<const char*>(t.get()) : "";
    }

    std::string& target() { return buf_; }

    std::vector<std::pair<int, std::string>> path_;
    std::string buf_;
    int pre_ = 0;
};

}  // namespace

Document parse_html(std::string_view bytes) {
    if (bytes.find('\0') != std::string_view::npos && bytes.substr(0, 2) != "\xFF\xFE" && bytes.substr(0, 2) != "\xFE\xFF")
        throw IngestError("invalid_file", "binary content (NUL bytes) in an HTML file");
    // No network, no error output; the encoding comes from the BOM or <meta charset>, else UTF-8.
    int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET;
    std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> d(htmlReadMemory(bytes.data(), int(bytes.size()), nullptr, nullptr, options),
                                                   xmlFreeDoc);
    if (!d) throw IngestError("invalid_file", "the HTML parser could not read the file");
    Walker w;
    // The title lives in <head>, which is otherwise skipped.
    const xmlNode* root = xmlDocGetRootElement(d.get());
    for (const xmlNode* c = root ? root->children : nullptr; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && name_of(c) == "head")
            for (const xmlNode* h = c->children; h; h = h->next)
                if (h->type == XML_ELEMENT_NODE && name_of(h) == "title") {
                    std::unique_ptr<xmlChar, void (*)(void*)> t(xmlNodeGetContent(h), xmlFree);
                    if (t) w.doc.title = collapse_blanks(reinterpret_cast<const char*>(t.get()));
                }
    w.walk(root, 0);
    w.flush();
    w.doc.format = Format::html;
    return std::move(w.doc);
}

}  // namespace agente::rag
