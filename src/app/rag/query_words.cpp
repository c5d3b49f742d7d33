#include "app/rag/query_words.hpp"

#include <cctype>

namespace agente::rag {

namespace {

bool word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

}  // namespace

std::vector<std::string_view> query_words(std::string_view text) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < text.size() && out.size() < max_query_terms;) {
        while (i < text.size() && !word_byte(static_cast<unsigned char>(text[i]))) ++i;
        std::size_t b = i;
        while (i < text.size() && word_byte(static_cast<unsigned char>(text[i]))) ++i;
        if (i > b) out.push_back(text.substr(b, i - b));
    }
    return out;
}

std::string join_query_words(std::string_view text, std::string_view separator, std::string_view quote) {
    std::string out;
    for (std::string_view w : query_words(text)) {
        if (!out.empty()) out += separator;
        out += quote;
        out += w;
        out += quote;
    }
    return out;
}

}  // namespace agente::rag
