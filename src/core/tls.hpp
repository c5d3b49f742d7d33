// TLS for the sockets that serve it (bind_address.hpp), through Asio's SSL stream and OpenSSL.
// The master reads the files that certfile, keyfile and ca_certs name and checks them by building the
// very context a worker builds, at start and on every reload: a broken certificate, or a key that
// does not match it, refuses the reload and the running generation serves on. A worker gets the
// bytes the master checked, through an inherited memfd, as it gets the configuration: a certificate
// renewed on disk reaches the workers with the next reload, all of them at once, never a worker that
// merely restarts (a crash, max_requests); and only the master needs to be able to read the key.
#pragma once

#include <agente/config.hpp>

#include <memory>
#include <optional>
#include <string>

namespace boost::asio::ssl { class context; }

namespace agente::core {

// The PEM texts of the TLS settings, and the keys of the session tickets.
struct TlsFiles {
    std::string certificate_chain;   // certfile
    std::string private_key;         // keyfile, or certfile when the key is in it (gunicorn allows that)
    std::string client_cas;          // ca_certs; empty when no client certificate is asked for
    // Random, made by the master at start and at each reload and shared by its workers, as nginx
    // shares them: a client resumes its session with whichever worker accepts it next (each
    // worker's own keys would send half the resumptions of two workers back to a full handshake).
    std::string ticket_keys;
};

// The files `config` names, read and checked with make_server_context(); nullopt without certfile.
// Throws std::runtime_error naming the setting and its file, and OpenSSL's reason:
//   certfile "/etc/agente-hibrido/tls/cert.pem": not a certificate chain: no start line
// A certificate outside its validity period is only a warning: clients will refuse it, but the
// operator may have nothing better yet, and refusing the reload would not give them anything better.
std::optional<TlsFiles> read_tls_files(const Config& config);

// A server context: TLS 1.2 and 1.3 only, the chain and its key, `ciphers` for TLS 1.2, client
// certificates as `cert_reqs` asks. Throws std::runtime_error as read_tls_files().
std::unique_ptr<boost::asio::ssl::context> make_server_context(const Config& config, const TlsFiles& files);

// Across exec: a memfd holding the texts (inherited by the workers' exec), and back. Both throw
// std::runtime_error.
int share_tls_files(const TlsFiles& files);
TlsFiles shared_tls_files(int fd);

}  // namespace agente::core
