// `agente-hibrido rag ingest|search`: arguments, the engine on an embedding loop of its own, and
// what the operator reads (a progress bar on a terminal, plain lines in a log, a summary; ranked
// results or OpenAI's search page as JSON).
#include "app/rag/cli.hpp"

#include "app/rag/engine.hpp"
#include "app/rag/gateway_embedder.hpp"
#include "app/rag/openai_json.hpp"
#include "app/rag/settings.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <charconv>
#include <iostream>
#include <memory>
#include <optional>

namespace agente::rag {

namespace {

constexpr const char* usage =
    "usage: agente-hibrido [-c CONFIG] rag ingest --store NAME [--json] PATH...\n"
    "       agente-hibrido [-c CONFIG] rag search --store NAME [--max-results N] [--ranker R] [--json] QUESTION\n"
    "\n"
    "ingest   files and folders (recursively, hidden ones skipped) into the vector store NAME,\n"
    "         created when missing; an unchanged file is skipped, a changed one replaced.\n"
    "search   the store's chunks best matching QUESTION: file, section, score and a snippet.\n"
    "\n"
    "  --store NAME        the vector store, by name\n"
    "  --max-results N     search: results, 1..50 [10]\n"
    "  --ranker R          search: hybrid, vector or bm25 [hybrid]\n"
    "  --json              ingest: the summary as JSON; search: OpenAI's vector_store.search_results.page\n"
    "  -c, --config FILE   the server's config file: the same [rag] settings and state directory\n";

// The widest a progress line gets when the terminal does not say.
constexpr std::size_t default_terminal_width = 80;
// Characters of a chunk shown under a search result.
constexpr std::size_t snippet_chars = 240;
constexpr int max_results_limit = 50;   // OpenAI's max_num_results

struct Options {
    std::string subcommand;
    std::string store;
    std::vector<std::string> operands;
    bool json = false;
    bool help = false;
    int max_results = 10;
    Ranker ranker = Ranker::hybrid;
};

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

Options parse(const std::vector<std::string>& command) {
    Options o;
    std::size_t i = 1;
    if (i < command.size() && command[i] != "--help" && command[i] != "-h") o.subcommand = command[i++];
    bool search = o.subcommand == "search";
    bool options_end = false;
    for (; i < command.size(); ++i) {
        const std::string& arg = command[i];
        if (options_end || arg.size() < 2 || arg[0] != '-') {
            o.operands.push_back(arg);
            continue;
        }
        std::string name = arg, attached;
        bool has_attached = false;
        if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            name = arg.substr(0, eq);
            attached = arg.substr(eq + 1);
            has_attached = true;
        }
        auto value = [&]() -> std::string {
            if (has_attached) return attached;
            if (i + 1 >= command.size()) throw UsageError(name + " expects a value");
            return command[++i];
        };
        if (name == "--") options_end = true;
        else if (name == "--help" || name == "-h") o.help = true;
        else if (name == "--json") o.json = true;
        else if (name == "--store") o.store = value();
        else if (search && (name == "--max-results" || name == "-n")) {
            std::string v = value();
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), o.max_results);
            if (ec != std::errc() || end != v.data() + v.size() || o.max_results < 1 || o.max_results > max_results_limit)
                throw UsageError(name + " expects a number from 1 to " + std::to_string(max_results_limit) + ", got \"" + v + "\"");
        } else if (search && name == "--ranker") {
            std::string v = value();
            std::optional<Ranker> r = parse_ranker(v);
            if (!r) throw UsageError("--ranker expects hybrid, vector or bm25, got \"" + v + "\"");
            o.ranker = *r;
        } else {
            throw UsageError("unknown option \"" + name + "\"");
        }
    }
    if (o.help) return o;
    if (o.subcommand != "ingest" && o.subcommand != "search")
        throw UsageError(o.subcommand.empty() ? "expected ingest or search" : "unknown rag command \"" + o.subcommand + "\"");
    if (o.store.empty()) throw UsageError("--store NAME is required");
    if (o.operands.empty()) throw UsageError(search ? "expected the question" : "expected files or folders to ingest");
    if (search && o.operands.size() > 1) throw UsageError("expected one question (quote it)");
    return o;
}

std::size_t terminal_width() {
    winsize ws{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return default_terminal_width;
}

int ingest(Engine& engine, const Options& o) {
    bool terminal = ::isatty(STDERR_FILENO);
    std::size_t width = terminal ? terminal_width() : 0;
    IngestProgress progress = [&](const std::string& path, std::size_t done, std::size_t total) {
        if (terminal) {
            std::cerr << "\r\033[K" << (path.empty() ? std::string() : progress_bar(path, done, total, width)) << std::flush;
        } else if (!path.empty()) {
            std::cerr << "rag: ingest " << done + 1 << "/" << total << " " << path << "\n";
        }
    };
    IngestSummary s = engine.ingest_paths(o.store, o.operands, progress);
    for (const auto& f : s.failures) std::cerr << "rag: failed: " << f << "\n";
    if (o.json) {
        nlohmann::json j = {{"store", o.store},     {"files", s.files},       {"chunks", s.chunks},
                            {"embedded", s.embedded}, {"skipped", s.skipped}, {"failed", s.failed},
                            {"failures", s.failures}};
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << "store \"" << o.store << "\": " << s.files << " files ingested, " << s.chunks << " chunks, "
                  << s.embedded << " embedded, " << s.skipped << " skipped as unchanged, " << s.failed << " failed\n";
    }
    return s.failed ? 1 : 0;
}

int search(Engine& engine, const Options& o) {
    SearchRequest r;
    r.query = o.operands.front();
    r.max_num_results = o.max_results;
    r.ranker = o.ranker;
    if (r.query.size() > max_query_chars)
        throw UsageError("the question is longer than " + std::to_string(max_query_chars) + " characters");
    SearchPage page = engine.search_named(o.store, r);
    if (o.json) {
        std::cout << search_page_json(page).dump(2) << "\n";
        return 0;
    }
    if (page.hits.empty()) std::cout << "no results in store \"" << o.store << "\"\n";
    int n = 0;
    for (const SearchHit& h : page.hits) {
        std::cout << ++n << ". " << h.filename;
        if (!h.heading.empty()) std::cout << " § " << h.heading;
        if (h.page > 0) std::cout << " (page " << h.page << ")";
        std::cout << "  score " << std::to_string(h.score).substr(0, 6) << "\n   " << snippet(h.text, snippet_chars) << "\n";
    }
    return 0;
}

// The CLI's own log on stderr (stdout is the command's output), quiet below errors: failures are
// reported in the summary.
void log_to_stderr() {
    auto logger = spdlog::stderr_color_mt("rag-cli");
    logger->set_level(spdlog::level::err);
    spdlog::set_default_logger(logger);
}

}  // namespace

std::string progress_bar(const std::string& path, std::size_t done, std::size_t total, std::size_t width) {
    constexpr std::size_t bar_cells = 20;
    std::size_t filled = total ? bar_cells * done / total : bar_cells;
    std::string line = "[" + std::string(filled, '#') + std::string(bar_cells - filled, '.') + "] " +
                       std::to_string(done) + "/" + std::to_string(total) + " ";
    std::string shown = path;
    if (line.size() + shown.size() > width && width > line.size() + 1) {
        std::size_t keep = width - line.size() - 1;   // the path's end names the file: keep that
        shown = "…" + path.substr(path.size() - keep);
        while (shown.size() > 3 && (static_cast<unsigned char>(shown[3]) & 0xC0) == 0x80) shown.erase(3, 1);
    }
    return line + shown;
}

std::string snippet(const std::string& text, std::size_t limit) {
    std::string out;
    bool blank = false;
    for (char ch : text) {
        bool space = ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
        if (space) {
            blank = !out.empty();
            continue;
        }
        bool continuation = (static_cast<unsigned char>(ch) & 0xC0) == 0x80;   // inside a UTF-8 character
        if (out.size() >= limit && !continuation) return out + "…";
        if (blank) out += ' ';
        blank = false;
        out += ch;
    }
    return out;
}

int run_rag_command(const std::vector<std::string>& command, const Config& config) {
    Options o;
    try {
        o = parse(command);
    } catch (const UsageError& e) {
        std::cerr << "Error: rag: " << e.what() << "\n\n" << usage;
        return 2;
    }
    if (o.help) {
        std::cout << usage;
        return 0;
    }
    try {
        log_to_stderr();
        RagSettings settings = load_rag_settings(*config.app, config.app_source);
        // The loop outlives the engine, whose ingest may still be waiting on an embedding.
        std::unique_ptr<EmbeddingLoop> loop;
        std::shared_ptr<Embedder> embedder;
        if (!settings.embedding_model.empty()) {
            loop = std::make_unique<EmbeddingLoop>(config);
            embedder = loop->embedder(settings.embedding_model, settings.embedding_batch_size);
        }
        Engine engine(settings, embedder, cluster::worker_cluster_settings(config));
        if (o.subcommand == "ingest") return ingest(engine, o);
        return search(engine, o);
    } catch (const UsageError& e) {
        std::cerr << "Error: rag: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "Error: rag: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace agente::rag
