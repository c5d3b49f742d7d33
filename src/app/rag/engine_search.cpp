// Search: the store's view brought up to date, the filter turned into allowed attachments, BM25 and
// vector candidates, fused, thresholded, and the chunks' text fetched for the few that remain.
#include "app/rag/engine.hpp"

#include "app/rag/rank.hpp"

#include <algorithm>
#include <unordered_map>

namespace agente::rag {

namespace {

// Candidates taken from each ranking before fusion: enough that a chunk ranked well by one and
// moderately by the other is still seen by both.
constexpr int min_candidates = 50;

RagError dims_changed(std::size_t answered, int held, const std::string& store_id) {
    return RagError(409, "the embedding model now answers " + std::to_string(answered) + " dimensions; vector store " +
                             store_id + " holds " + std::to_string(held));
}

}  // namespace

SearchPage Engine::search(const std::string& store_id, const SearchRequest& r) {
    Lease db = this->db();
    std::optional<StoreRecord> rec = db->store(store_id);
    if (!rec) throw RagError(404, "no vector store " + store_id);
    bool has_vectors = !rec->embedding_model.empty();
    bool empty_store = !db->has_chunks(rec->rowid);
    bool use_vectors = r.ranker != Ranker::text;
    bool use_text = r.ranker != Ranker::vector;
    if (use_vectors && !empty_store) {
        if (!has_vectors) {
            if (r.ranker == Ranker::vector)
                throw RagError(400, "vector store " + store_id + " has no vectors (its files were ingested without "
                                    "an embedding model): use the bm25 ranker");
            use_vectors = false;
        } else if (!embedder_) {
            if (r.ranker == Ranker::vector) throw RagError(503, "no [rag] embedding_model is configured");
            use_vectors = false;
        } else if (embedder_->model() != rec->embedding_model) {
            throw RagError(409, "vector store " + store_id + " holds vectors of model \"" + rec->embedding_model +
                                    "\", but [rag] embedding_model is \"" + embedder_->model() +
                                    "\": search it with the bm25 ranker, or set the model back");
        }
    }
    SearchPage page;
    page.query = r.query;
    if (empty_store) return page;

    // The question's vector first: the view's lock is not held across a call upstream.
    std::vector<float> q;
    if (use_vectors) q = embedder_->embed({r.query}).at(0);
    IndexCache::Lease view = indexes_.get(*db, *rec);
    const StoreView& v = *view.view;
    std::optional<std::vector<char>> allowed;
    std::optional<std::vector<long>> allowed_attachments;
    if (r.filter) {
        allowed.emplace(v.files.size(), 0);
        allowed_attachments.emplace();
        for (std::size_t g = 0; g < v.files.size(); ++g)
            if (matches(*r.filter, v.attributes[g])) {
                (*allowed)[g] = 1;
                allowed_attachments->push_back(v.files[g].rowid);
            }
    }
    int k = std::clamp(r.max_num_results, 1, 50);
    int candidates = std::max(min_candidates, 2 * k);
    std::vector<long> vector_ids, text_ids;
    std::unordered_map<long, double> similarity, bm25;
    if (use_vectors && db->searches_vectors()) {
        if (int(q.size()) != rec->dims) throw dims_changed(q.size(), rec->dims, store_id);
        for (auto [id, score] : db->nearest(rec->rowid, rec->embedding_model, q, candidates, allowed_attachments,
                                            settings_.hnsw_ef_search)) {
            vector_ids.push_back(id);
            similarity[id] = score;
        }
    } else if (use_vectors && v.index && v.index->size() > 0) {
        if (int(q.size()) != v.dims) throw dims_changed(q.size(), v.dims, store_id);
        const std::vector<char>* allow = allowed ? &*allowed : nullptr;
        for (const Hit& h : v.index->search(q.data(), std::size_t(candidates), allow, settings_.hnsw_ef_search)) {
            vector_ids.push_back(h.label);
            similarity[h.label] = h.score;
        }
    }
    if (use_text)
        for (auto [id, score] : db->bm25(rec->rowid, r.query, candidates, allowed_attachments)) {
            text_ids.push_back(id);
            bm25[id] = score;
        }
    double wv = use_vectors ? r.embedding_weight.value_or(settings_.embedding_weight) : 0.0;
    double wt = use_text ? r.text_weight.value_or(settings_.text_weight) : 0.0;
    std::vector<Fused> fused = fuse_rrf(vector_ids, text_ids, settings_.rrf_k, wv, wt);

    std::vector<std::pair<Fused, double>> kept;   // with the score reported
    for (const Fused& f : fused) {
        double score = f.score;
        if (r.ranker == Ranker::vector) score = std::max(0.0, similarity[f.id]);
        else if (r.ranker == Ranker::text) score = bm25[f.id] / (1.0 + bm25[f.id]);
        if (score < r.score_threshold) continue;
        kept.emplace_back(f, score);
        if (int(kept.size()) == k) break;
    }
    std::vector<long> ids;
    for (auto& [f, s] : kept) ids.push_back(f.id);
    std::unordered_map<long, ChunkRow> rows;
    for (ChunkRow& c : db->chunks(ids)) rows[c.id] = std::move(c);
    for (auto& [f, score] : kept) {
        auto row = rows.find(f.id);
        if (row == rows.end()) continue;   // removed since the view was synced
        auto g = v.group_of.find(row->second.attachment);
        if (g == v.group_of.end()) continue;
        const AttachmentMeta& m = v.files[std::size_t(g->second)];
        SearchHit h;
        h.file_id = m.file_id;
        h.filename = m.filename;
        h.score = score;
        h.attributes = v.attributes[std::size_t(g->second)];
        h.text = row->second.text;
        h.heading = row->second.heading;
        h.page = row->second.page;
        h.chunk = row->second.seq;
        h.similarity = f.vector_rank ? similarity[f.id] : 0.0;
        h.vector_rank = f.vector_rank;
        h.text_rank = f.text_rank;
        page.hits.push_back(std::move(h));
    }
    return page;
}

SearchPage Engine::search_named(const std::string& store_name, const SearchRequest& request) {
    std::optional<StoreRecord> rec;
    {
        Lease db = this->db();
        rec = db->store_named(store_name);
    }
    if (!rec) throw RagError(404, "no vector store named \"" + store_name + "\"");
    return search(rec->id, request);
}

}  // namespace agente::rag
