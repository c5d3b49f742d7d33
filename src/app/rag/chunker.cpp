#include "app/rag/chunker.hpp"

#include "app/rag/tokens.hpp"

#include <algorithm>

namespace agente::rag {

namespace {

struct Section {
    std::string text;   // its blocks, separated by blank lines (paragraph breaks)
    const Block* first;
};

std::vector<Section> sections_of(const Document& doc) {
    std::vector<Section> out;
    for (const Block& b : doc.blocks) {
        if (out.empty() || out.back().first->headings != b.headings || out.back().first->page != b.page)
            out.push_back({{}, &b});
        else
            out.back().text += "\n\n";
        out.back().text += b.text;
    }
    return out;
}

// The windows of one section, as [begin, end) piece indices.
std::vector<std::pair<std::size_t, std::size_t>> windows(const std::vector<Piece>& p, const ChunkingOptions& o) {
    std::size_t n = p.size();
    std::vector<long> sum(n + 1, 0);   // sum[i]: tokens of pieces [0, i)
    for (std::size_t i = 0; i < n; ++i) sum[i + 1] = sum[i] + p[i].tokens;
    auto tokens = [&](std::size_t b, std::size_t e) { return sum[e] - sum[b]; };
    std::vector<std::pair<std::size_t, std::size_t>> out;
    std::size_t s = 0;
    while (s < n) {
        if (tokens(s, n) <= o.max_tokens) {
            out.emplace_back(s, n);
            break;
        }
        std::size_t e_max = s + 1;
        while (e_max < n && tokens(s, e_max + 1) <= o.max_tokens) ++e_max;
        // The cut: the strongest break in the window's second half, the latest of equals.
        std::size_t lo = s + 1;
        while (lo < e_max && tokens(s, lo) < o.max_tokens / 2) ++lo;
        std::size_t cut = e_max;
        for (std::size_t e = e_max; e >= lo && e > s; --e)
            if (p[e - 1].after > p[cut - 1].after) cut = e;
        out.emplace_back(s, cut);
        if (cut >= n) break;
        if (o.overlap_tokens <= 0) {
            s = cut;
            continue;
        }
        // The next start: overlap_tokens back from the cut, moved forward to the strongest break
        // there (the earliest of equals, keeping as much overlap as the budget allows).
        std::size_t s0 = s + 1;
        while (s0 < cut && tokens(s0, cut) > o.overlap_tokens) ++s0;
        std::size_t next = s0;
        for (std::size_t b = s0; b < cut; ++b)
            if (p[b - 1].after > p[next - 1].after) next = b;
        s = std::max(next, s + 1);
    }
    return out;
}

}  // namespace

std::optional<std::string> chunking_problem(const ChunkingOptions& o) {
    if (o.max_tokens < min_chunk_tokens || o.max_tokens > max_chunk_tokens)
        return "max_chunk_size_tokens must be between " + std::to_string(min_chunk_tokens) + " and " +
               std::to_string(max_chunk_tokens) + ", got " + std::to_string(o.max_tokens);
    if (o.overlap_tokens < 0 || o.overlap_tokens > o.max_tokens / 2)
        return "chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens (" +
               std::to_string(o.max_tokens / 2) + "), got " + std::to_string(o.overlap_tokens);
    return std::nullopt;
}

std::vector<Chunk> chunk_document(const Document& doc, const ChunkingOptions& o) {
    std::vector<Chunk> out;
    for (const Section& sec : sections_of(doc)) {
        std::vector<Piece> p = split_pieces(sec.text);
        for (auto [b, e] : windows(p, o)) {
            Chunk c;
            c.text = sec.text.substr(p[b].begin, p[e - 1].end - p[b].begin);
            c.headings = sec.first->headings;
            c.page = sec.first->page;
            for (std::size_t i = b; i < e; ++i) c.tokens += p[i].tokens;
            out.push_back(std::move(c));
        }
    }
    return out;
}

}  // namespace agente::rag
