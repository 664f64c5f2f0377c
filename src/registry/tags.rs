//! `GET /v2/REPO/tags/list`: a repository's tags, page after page as the registry's `Link`
//! headers lead (`rel="next"`), for the catalogue of builders (docs/toolchain.md).

use super::RegistryError;
use super::client::Client;
use super::retry::retry;
use reqwest::Method;

/// Tags are asked for this many at a time (the registry may send fewer, with a `Link`).
const PAGE: usize = 1000;
/// A tag list answer larger than this is refused (a repository of thousands of tags is well
/// under it).
const PAGE_LIMIT: u64 = 8 << 20;
/// No catalogue needs more pages than this; a registry that leads on forever is stopped.
const MAX_PAGES: usize = 1000;

#[derive(serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Client {
    /// Every tag of `repo`, in the registry's order.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>, RegistryError> {
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list?n={PAGE}"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(self.tags_protocol(repo, format!("more than {MAX_PAGES} pages of tags")));
            }
            let (page, link) = self.tags_page(repo, &path).await?;
            tags.extend(page);
            next = link;
        }
        Ok(tags)
    }

    /// One page: its tags and the next page's path or URL, if any.
    async fn tags_page(&self, repo: &str, path: &str) -> Result<(Vec<String>, Option<String>), RegistryError> {
        let what = format!("listing the tags of {repo}");
        retry(&self.retry, self.registry(), &what, |_| async {
            let req = self.request(Method::GET, path).header("Accept", "application/json");
            let resp = self.check(self.send(req, &what).await?, &what, repo).await?;
            let link = resp.headers().get("Link").and_then(|v| v.to_str().ok()).and_then(next_link);
            let bytes = super::client::read_limited(resp, PAGE_LIMIT)
                .await
                .map_err(|e| super::client::transport_error(self.registry(), &what, &e))?
                .ok_or_else(|| self.tags_protocol(repo, format!("a page of tags is larger than {PAGE_LIMIT} bytes")))?;
            let list: TagList = serde_json::from_slice(&bytes)
                .map_err(|e| self.tags_protocol(repo, format!("the tag list is not JSON of the API's form: {e}")))?;
            Ok((list.tags.unwrap_or_default(), link))
        })
        .await
    }

    fn tags_protocol(&self, repo: &str, detail: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry().to_string(),
            what: format!("listing the tags of {repo}"),
            detail,
        }
    }
}

/// The `rel="next"` target of a `Link` header (`</v2/x/tags/list?n=100&last=b>; rel="next"`).
pub(super) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next =
            params.split(';').any(|p| matches!(p.trim().replace(' ', "").as_str(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::http_fake::{Reply, Server};
    use crate::registry::{RegistryOptions, RetryPolicy};

    #[test]
    fn link_headers() {
        let h = r#"</v2/hexpm/elixir/tags/list?last=b&n=2>; rel="next""#;
        assert_eq!(next_link(h).as_deref(), Some("/v2/hexpm/elixir/tags/list?last=b&n=2"));
        assert_eq!(next_link(r#"<https://r/x>; rel="prev", <https://r/y>; rel=next"#).as_deref(), Some("https://r/y"));
        assert_eq!(next_link(r#"</v2/x>; rel="prev""#), None);
    }

    #[tokio::test]
    async fn pages_are_followed() {
        let server = Server::start(|req| match (req.path(), req.query("last").as_deref()) {
            ("/v2/", _) => Reply::status(200),
            ("/v2/hexpm/elixir/tags/list", None) => Reply::status(200)
                .header("Link", r#"</v2/hexpm/elixir/tags/list?last=b&n=2>; rel="next""#)
                .body(r#"{"name":"hexpm/elixir","tags":["a","b"]}"#),
            ("/v2/hexpm/elixir/tags/list", Some("b")) => {
                Reply::status(200).body(r#"{"name":"hexpm/elixir","tags":["c"]}"#)
            }
            _ => Reply::status(404),
        })
        .await;
        let opts = RegistryOptions { retry: RetryPolicy { attempts: 1, ..Default::default() }, ..Default::default() };
        let client = Client::connect(&server.addr(), &opts, vec![]).await.unwrap();
        assert_eq!(client.list_tags("hexpm/elixir").await.unwrap(), ["a", "b", "c"]);
        let err = client.list_tags("hexpm/nothing").await.unwrap_err().to_string();
        assert!(err.contains("hexpm/nothing") && err.contains(&server.addr()), "{err}");
    }
}
