// Markdown through cmark (CommonMark): headings make the path, each paragraph, list item and code
// block is a block. The walk is cmark's iterator, not recursion: nesting depth costs no stack.
#include "app/rag/document.hpp"

#include <cmark.h>

#include <memory>
#include <utility>

namespace agente::rag {

namespace {

class Walker {
public:
    Document doc;

    void enter(cmark_node* n) {
        switch (cmark_node_get_type(n)) {
        case CMARK_NODE_HEADING:
            flush();
            in_heading_ = true;
            heading_.clear();
            break;
        case CMARK_NODE_LIST:
        case CMARK_NODE_THEMATIC_BREAK:
            flush();
            break;
        case CMARK_NODE_ITEM:
            flush();
            buf_ = "- ";
            prefix_ = buf_.size();
            break;
        case CMARK_NODE_PARAGRAPH:
            if (in_item(n)) {
                if (buf_.size() > prefix_) buf_ += "\n";
            } else {
                flush();
            }
            break;
        case CMARK_NODE_CODE_BLOCK:
            if (in_item(n)) {
                buf_.append("\n").append(literal(n));
            } else {
                flush();
                buf_ = literal(n);
                flush();
            }
            break;
        case CMARK_NODE_TEXT:
        case CMARK_NODE_CODE:
            target().append(literal(n));
            break;
        case CMARK_NODE_SOFTBREAK:
            target().append(" ");
            break;
        case CMARK_NODE_LINEBREAK:
            target().append("\n");
            break;
        default:   // emphasis, links, images (their text children), raw HTML (dropped)
            break;
        }
    }

    void exit(cmark_node* n) {
        switch (cmark_node_get_type(n)) {
        case CMARK_NODE_HEADING: {
            in_heading_ = false;
            int level = cmark_node_get_heading_level(n);
            while (!path_.empty() && path_.back().first >= level) path_.pop_back();
            std::string h = collapse_blanks(heading_);
            if (!h.empty()) path_.emplace_back(level, std::move(h));
            break;
        }
        case CMARK_NODE_ITEM:
            flush();
            break;
        case CMARK_NODE_PARAGRAPH:
            if (!in_item(n)) flush();
            break;
        default:
            break;
        }
    }

    void flush() {
        std::string t = buf_.size() > prefix_ ? trim(buf_) : std::string();
        buf_.clear();
        prefix_ = 0;
        if (t.empty()) return;
        Block b;
        b.text = std::move(t);
        for (auto& [level, text] : path_) b.headings.push_back(text);
        doc.blocks.push_back(std::move(b));
    }

private:
    static bool in_item(cmark_node* n) {
        cmark_node* p = cmark_node_parent(n);
        return p && cmark_node_get_type(p) == CMARK_NODE_ITEM;
    }
    static std::string literal(cmark_node* n) {
        const char* s = cmark_node_get_literal(n);
        return s ? s : "";
    }
    std::string& target() { return in_heading_ ? heading_ : buf_; }

    std::vector<std::pair<int, std::string>> path_;
    std::string buf_;
    std::size_t prefix_ = 0;   // "- " of a list item: not content by itself
    std::string heading_;
    bool in_heading_ = false;
};

}  // namespace

Document parse_markdown(std::string_view bytes) {
    std::string text = text_as_utf8(bytes);
    std::unique_ptr<cmark_node, void (*)(cmark_node*)> root(cmark_parse_document(text.data(), text.size(),
                                                                                 CMARK_OPT_DEFAULT),
                                                            cmark_node_free);
    if (!root) throw IngestError("invalid_file", "the Markdown parser could not read the file");
    Walker w;
    std::unique_ptr<cmark_iter, void (*)(cmark_iter*)> it(cmark_iter_new(root.get()), cmark_iter_free);
    for (cmark_event_type ev; (ev = cmark_iter_next(it.get())) != CMARK_EVENT_DONE;) {
        cmark_node* n = cmark_iter_get_node(it.get());
        if (ev == CMARK_EVENT_ENTER) w.enter(n);
        else if (ev == CMARK_EVENT_EXIT) w.exit(n);
    }
    w.flush();
    w.doc.format = Format::markdown;
    return std::move(w.doc);
}

}  // namespace agente::rag
