#include "app/rag/tokens.hpp"

namespace agente::rag {

namespace {

enum class Kind { blank, letter, digit, cjk, other };

bool is_blank(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// The code point starting at s[i] and its length in bytes (a malformed byte counts as one).
char32_t decode(std::string_view s, std::size_t i, std::size_t& len) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
    if (i + std::size_t(n) > s.size()) n = 1;
    char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + std::size_t(k)]) & 0x3F);
    len = std::size_t(n);
    return cp;
}

Kind kind_of(char32_t cp) {
    if (cp < 0x80) {
        if (is_blank(static_cast<unsigned char>(cp))) return Kind::blank;
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_') return Kind::letter;
        if (cp >= '0' && cp <= '9') return Kind::digit;
        return Kind::other;
    }
    if (cp == 0xA0) return Kind::blank;
    // CJK, Hiragana, Katakana, Hangul and their punctuation: about a token each.
    if ((cp >= 0x2E80 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0x20000 && cp <= 0x3FFFF))
        return Kind::cjk;
    if (cp >= 0x2000 && cp <= 0x2BFF) return Kind::other;   // general punctuation, arrows, symbols
    return Kind::letter;                                    // accented Latin, Greek, Cyrillic, ...
}

// Tokens of the visible run [b, e).
int run_tokens(std::string_view s, std::size_t b, std::size_t e) {
    int tokens = 0, letters = 0, digits = 0;
    auto close = [&] {
        tokens += (letters + 4) / 5 + (digits + 2) / 3;
        letters = digits = 0;
    };
    for (std::size_t i = b, len = 0; i < e; i += len) {
        Kind k = kind_of(decode(s, i, len));
        if (k == Kind::letter) {
            if (digits) close();
            ++letters;
        } else if (k == Kind::digit) {
            if (letters) close();
            ++digits;
        } else {
            close();
            ++tokens;   // punctuation, symbol, CJK character
        }
    }
    close();
    return tokens;
}

bool ends_sentence(std::string_view s, std::size_t b, std::size_t e) {
    while (e > b && (s[e - 1] == '"' || s[e - 1] == '\'' || s[e - 1] == ')' || s[e - 1] == ']')) --e;
    if (e == b) return false;
    char c = s[e - 1];
    return c == '.' || c == '!' || c == '?' || c == ':' || c == ';';
}

}  // namespace

int count_tokens(std::string_view text) {
    int total = 0;
    for (const Piece& p : split_pieces(text)) total += p.tokens;
    return total;
}

std::vector<Piece> split_pieces(std::string_view s) {
    std::vector<Piece> out;
    std::size_t i = 0;
    while (i < s.size() && is_blank(static_cast<unsigned char>(s[i]))) ++i;
    while (i < s.size()) {
        std::size_t b = i, len = 0;
        while (i < s.size() && i - b < max_piece_bytes) {
            char32_t cp = decode(s, i, len);
            if (kind_of(cp) == Kind::blank || i + len - b > max_piece_bytes) break;
            i += len;
        }
        if (i == b) i += len;   // a code point that alone is wider than a piece (cannot be: 4 < 64)
        std::size_t e = i;
        int newlines = 0;
        bool blank_after = false;
        while (i < s.size()) {
            char32_t cp = decode(s, i, len);
            if (kind_of(cp) != Kind::blank) break;
            if (cp == '\n') ++newlines;
            blank_after = true;
            i += len;
        }
        Break after = Break::none;
        if (newlines >= 2) after = Break::paragraph;
        else if (blank_after && ends_sentence(s, b, e)) after = Break::sentence;
        else if (newlines == 1) after = Break::line;
        out.push_back({std::uint32_t(b), std::uint32_t(e), std::uint16_t(run_tokens(s, b, e)), after});
    }
    return out;
}

}  // namespace agente::rag
