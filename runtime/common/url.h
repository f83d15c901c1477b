/*
 * The one reading of an http(s) URL that the AWS settings take: the
 * configuration checks `aws.endpoint` and `aws.queue_url` with it at load
 * time (in any build), and the AWS client splits its endpoint with it.
 * Plain string work; nothing is copied.
 */
#ifndef MT_URL_H
#define MT_URL_H

#include <stddef.h>

typedef struct mt_url_s {
  const char *host; /* the authority: host[:port] */
  size_t host_len;
  const char *path; /* the rest, "" or starting with '/' */
} mt_url_t;

/* Splits "http(s)://host[:port][/path]" into *out. Returns NULL, or what
 * is wrong with url as a phrase ("is not an http:// or https:// URL", "has
 * no host", ...). A query, a fragment, blanks and user information are
 * refused: credentials in a URL would end up in every error message. */
const char *mt_url_split(const char *url, mt_url_t *out);

/* url as a message may quote it: itself, or a stand-in when its authority
 * carries user information (a password, likely). */
const char *mt_url_shown(const char *url);

#endif
