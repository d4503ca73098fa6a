//! Texts in several languages, picked by the end user's locale.
//!
//! A text is written once (`"Still there?"`) or per locale
//! (`{"default": "Still there?", "pt": "Ainda aí?", "pt-BR": "Ainda está aí?"}`). The
//! end user's locale is looked up from the most specific tag to the least (`pt-BR`,
//! then `pt`), then `default`, which every localised text must have: a user whose
//! language nobody configured still gets a warning.

use crate::template::Template;

/// The key of the text used when no locale matches.
pub const DEFAULT_KEY: &str = "default";

/// A template per locale, with the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Texts {
    default: Template,
    /// Lower-cased locale tags and their templates, in the config's order.
    by_locale: Vec<(String, Template)>,
}

impl Texts {
    /// One text for everybody.
    pub fn single(template: Template) -> Self {
        Texts {
            default: template,
            by_locale: Vec::new(),
        }
    }

    /// Texts per locale. `entries` are `(key, template)` pairs as written; `default`
    /// must be among them. Errors are `(key, reason)`; an empty key stands for the
    /// whole map.
    pub fn localized(
        entries: impl IntoIterator<Item = (String, Template)>,
    ) -> Result<Self, (String, String)> {
        let mut default = None;
        let mut by_locale = Vec::new();
        for (key, template) in entries {
            if key == DEFAULT_KEY {
                default = Some(template);
                continue;
            }
            check_tag(&key).map_err(|reason| (key.clone(), reason))?;
            by_locale.push((key.to_ascii_lowercase(), template));
        }
        let default = default.ok_or_else(|| {
            (
                String::new(),
                format!(
                    "no \"{DEFAULT_KEY}\" text: it is what users get whose locale has no text of its own"
                ),
            )
        })?;
        Ok(Texts { default, by_locale })
    }

    /// The text for `locale` (`pt-BR`, `pt_BR`, `PT`; `None` when the session has
    /// none): the exact tag, then ever shorter prefixes, then the default.
    pub fn pick(&self, locale: Option<&str>) -> &Template {
        let Some(locale) = locale else {
            return &self.default;
        };
        let mut wanted = locale.trim().replace('_', "-").to_ascii_lowercase();
        loop {
            if let Some((_, template)) = self.by_locale.iter().find(|(tag, _)| *tag == wanted) {
                return template;
            }
            match wanted.rfind('-') {
                Some(cut) => wanted.truncate(cut),
                None => return &self.default,
            }
        }
    }

    /// Every template, the default first: for checks that span all languages.
    pub fn templates(&self) -> impl Iterator<Item = &Template> {
        std::iter::once(&self.default).chain(self.by_locale.iter().map(|(_, t)| t))
    }

    /// The locale tags that have a text of their own, as configured (lower case).
    pub fn locales(&self) -> impl Iterator<Item = &str> {
        self.by_locale.iter().map(|(tag, _)| tag.as_str())
    }
}

/// Checks a locale key: a BCP 47 language tag of the common shape, a 2 or 3 letter
/// language then subtags of 2 to 8 letters or digits (`pt`, `pt-BR`, `zh-Hant-TW`).
fn check_tag(tag: &str) -> Result<(), String> {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    let language_ok =
        (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_alphabetic());
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if language_ok && rest_ok {
        Ok(())
    } else {
        Err(format!(
            "{tag:?} is not a locale key: write \"{DEFAULT_KEY}\" or a language tag such as \"pt\" or \"pt-BR\""
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Values;

    fn text(texts: &Texts, locale: Option<&str>) -> String {
        texts.pick(locale).render(Values {
            ms_left: 0,
            closes_at: "",
            agent_name: None,
            end_user_name: None,
            tenant: "",
            attributes: &[],
        })
    }

    fn texts(entries: &[(&str, &str)]) -> Result<Texts, (String, String)> {
        Texts::localized(entries.iter().map(|(k, v)| {
            (
                (*k).to_owned(),
                Template::parse(v).unwrap_or_else(|e| panic!("{e}")),
            )
        }))
    }

    #[test]
    fn falls_back_from_region_to_language_to_default() {
        let t = texts(&[("default", "hi"), ("pt", "olá"), ("pt-BR", "oi")])
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(text(&t, Some("pt-BR")), "oi");
        assert_eq!(text(&t, Some("pt_br")), "oi");
        assert_eq!(text(&t, Some("pt-PT")), "olá");
        assert_eq!(text(&t, Some("PT")), "olá");
        assert_eq!(text(&t, Some("de-DE")), "hi");
        assert_eq!(text(&t, Some("")), "hi");
        assert_eq!(text(&t, None), "hi");
    }

    #[test]
    fn a_localized_text_needs_a_default_and_well_formed_keys() {
        let (key, reason) = texts(&[("pt", "olá")]).unwrap_err();
        assert_eq!(key, "");
        assert!(reason.starts_with("no \"default\" text"), "{reason}");
        for bad in ["portuguese", "p", "pt-", "pt--BR", "pt_BR", "pt-B R", "12"] {
            let (key, reason) = texts(&[("default", "x"), (bad, "y")]).unwrap_err();
            assert_eq!(key, bad);
            assert!(reason.contains("is not a locale key"), "{reason}");
        }
        assert!(texts(&[("default", "x"), ("zh-Hant-TW", "y")]).is_ok());
    }
}
