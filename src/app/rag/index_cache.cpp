#include "app/rag/index_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

namespace agente::rag {

namespace {

// Removed vectors stay in an HNSW graph (walked through, never returned); past this share of its
// rows the index is reloaded without them.
constexpr double reload_above_removed_share = 0.25;

}  // namespace

IndexCache::IndexCache(const RagSettings& settings) : settings_(settings), thread_([this] { builder(); }) {}

IndexCache::~IndexCache() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void IndexCache::load_files(Store& db, long store_rowid, StoreView& v) {
    std::vector<AttachmentMeta> files = db.completed_attachments(store_rowid);
    // Groups of attachments already indexed keep their number: the index's rows carry it.
    for (auto& f : files) {
        auto it = v.group_of.find(f.rowid);
        int g = 0;
        if (it == v.group_of.end()) {
            g = int(v.files.size());
            v.group_of[f.rowid] = g;
            v.files.push_back(f);
            v.attributes.emplace_back();
        } else {
            g = it->second;
            v.files[std::size_t(g)] = f;
        }
        nlohmann::json a = nlohmann::json::parse(f.attributes, nullptr, false);
        v.attributes[std::size_t(g)] = a.is_object() ? std::move(a) : nlohmann::json::object();
    }
}

void IndexCache::full_load(Store& db, const StoreRecord& rec, StoreView& v) {
    long epoch = v.epoch + 1;
    v = StoreView{};
    v.epoch = epoch;
    v.model = rec.embedding_model;
    v.dims = rec.dims;
    v.index = std::make_unique<VectorIndex>(rec.dims);
    load_files(db, rec.rowid, v);
    if (rec.embedding_model.empty() || rec.dims <= 0) return;
    for (Vector& x : db.vectors(rec.rowid, rec.embedding_model, 0)) {
        if (int(x.values.size()) != rec.dims) continue;
        auto g = v.group_of.find(x.attachment);
        if (g != v.group_of.end()) v.index->add(x.chunk, g->second, x.values.data());
    }
}

void IndexCache::sync(Store& db, const StoreRecord& rec, const std::shared_ptr<Entry>& e) {
    StoreView& v = e->view;
    bool reload = !v.index || v.model != rec.embedding_model || v.dims != rec.dims;
    if (!reload) {
        load_files(db, rec.rowid, v);
        std::vector<long> ids = db.chunk_ids(rec.rowid);
        std::unordered_set<long> present(ids.begin(), ids.end());
        for (long label : v.index->labels())
            if (!present.count(label)) v.index->remove(label);
        std::size_t removed = v.index->rows() - v.index->size();
        reload = v.index->uses_hnsw() && double(removed) > reload_above_removed_share * double(v.index->rows());
        if (!reload && !rec.embedding_model.empty())
            for (Vector& x : db.vectors(rec.rowid, rec.embedding_model, v.index->max_label())) {
                auto g = v.group_of.find(x.attachment);
                if (g != v.group_of.end() && int(x.values.size()) == rec.dims) v.index->add(x.chunk, g->second, x.values.data());
            }
    }
    if (reload) full_load(db, rec, v);
    v.generation = rec.generation;
    bool want_graph = !v.index->uses_hnsw() && v.index->size() >= std::size_t(std::max(settings_.exact_search_below, 1));
    if (want_graph && !e->building) {
        e->building = true;
        std::lock_guard lock(mutex_);
        queue_.push_back(e);
        wake_.notify_all();
    }
}

IndexCache::Lease IndexCache::get(Store& db, const StoreRecord& rec) {
    std::shared_ptr<Entry> e;
    {
        std::lock_guard lock(mutex_);
        auto& slot = entries_[rec.rowid];
        if (!slot) slot = std::make_shared<Entry>();
        e = slot;
    }
    {
        std::shared_lock lock(e->mutex);
        if (e->view.index && e->view.generation == rec.generation) return {std::move(lock), &e->view};
    }
    {
        std::unique_lock lock(e->mutex);
        if (!e->view.index || e->view.generation != rec.generation) sync(db, rec, e);
    }
    // The entry stays alive while it is in entries_ (never erased while the cache lives).
    std::shared_lock lock(e->mutex);
    return {std::move(lock), &e->view};
}

void IndexCache::builder() {
    for (;;) {
        std::shared_ptr<Entry> e;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            e = queue_.front();
            queue_.pop_front();
            ++running_builds_;
        }
        VectorIndex::Snapshot snap;
        long epoch = 0;
        {
            std::shared_lock lock(e->mutex);
            snap = e->view.index->snapshot();
            epoch = e->view.epoch;
        }
        HnswOptions o{settings_.hnsw_m, settings_.hnsw_ef_construction, settings_.hnsw_ef_search, 1};
        std::shared_ptr<HnswGraph> graph;
        try {
            graph = VectorIndex::build(snap, o);
        } catch (const std::exception& ex) {
            spdlog::error("rag: building the HNSW index failed, search stays exact: {}", ex.what());
        }
        {
            std::unique_lock lock(e->mutex);
            if (graph && e->view.epoch == epoch && e->view.index && !e->view.index->uses_hnsw())
                e->view.index->adopt(std::move(graph));
            e->building = false;
        }
        std::lock_guard lock(mutex_);
        --running_builds_;
        idle_.notify_all();
    }
}

void IndexCache::wait_for_builds() {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [&] { return queue_.empty() && running_builds_ == 0; });
}

std::vector<long> IndexCache::stores() {
    std::lock_guard lock(mutex_);
    std::vector<long> out;
    for (auto& [rowid, e] : entries_) out.push_back(rowid);
    return out;
}

void IndexCache::forget(long store_rowid) {
    std::lock_guard lock(mutex_);
    entries_.erase(store_rowid);   // a lease or a build still holding the entry keeps it alive until done
}

std::size_t IndexCache::memory_bytes() {
    std::vector<std::shared_ptr<Entry>> all;
    {
        std::lock_guard lock(mutex_);
        for (auto& [rowid, e] : entries_) all.push_back(e);
    }
    std::size_t total = 0;
    for (auto& e : all) {
        std::shared_lock lock(e->mutex);
        if (e->view.index) total += e->view.index->memory_bytes();
    }
    return total;
}

}  // namespace agente::rag
