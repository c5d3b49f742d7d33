// The one translation unit that compiles Asio and Beast (BOOST_*_SEPARATE_COMPILATION elsewhere),
// so that every other file only parses their declarations; and Boost.URL, whose library Debian
// ships in a package of its own (this is its documented header-only use).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
#include <boost/url/src.hpp>
