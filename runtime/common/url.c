#include "common/url.h"

#include <string.h>
#include <strings.h>

const char *mt_url_split(const char *url, mt_url_t *out) {
  const char *p;
  if (strncasecmp(url, "https://", 8) == 0)
    p = url + 8;
  else if (strncasecmp(url, "http://", 7) == 0)
    p = url + 7;
  else
    return "is not an http:// or https:// URL";
  size_t alen = strcspn(p, "/?#");
  if (alen == 0 || *p == ':')
    return "has no host";
  if (memchr(p, '@', alen) != NULL)
    return "has user information (user@), which is not supported";
  if (strpbrk(p + alen, "?# \t\r\n") != NULL)
    return "may have a path but no query, fragment or blank";
  out->host = p;
  out->host_len = alen;
  out->path = p + alen;
  return NULL;
}

const char *mt_url_shown(const char *url) {
  const char *p = strstr(url, "://");
  p = p != NULL ? p + 3 : url;
  return memchr(p, '@', strcspn(p, "/?#")) != NULL
             ? "(a URL with user information, not shown)"
             : url;
}
