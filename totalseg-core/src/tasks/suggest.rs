//! "Did you mean" suggestions for misspelt task and class names.

/// Most suggestions offered for one unknown name.
const MAX_SUGGESTIONS: usize = 3;

/// Known names close to `wanted`, best first: case-insensitive edit distance within a third of
/// the name's length (at least 2), or names containing `wanted` (or contained in it) when it is
/// at least 3 characters long.
pub(crate) fn suggest<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted_lower = wanted.to_lowercase();
    let max_distance = (wanted_lower.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &'a str)> = known
        .into_iter()
        .filter_map(|candidate| {
            let candidate_lower = candidate.to_lowercase();
            let distance = edit_distance(&wanted_lower, &candidate_lower);
            let related = wanted_lower.chars().count() >= 3
                && (candidate_lower.contains(&wanted_lower)
                    || wanted_lower.contains(&candidate_lower));
            // Substring matches rank after close spellings of similar length.
            if distance <= max_distance {
                Some((distance, candidate))
            } else if related {
                Some((max_distance + 1 + distance, candidate))
            } else {
                None
            }
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name)
        .collect()
}

/// Levenshtein distance over chars.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    let mut current = vec![0; b_chars.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b_chars.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b_chars.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("livr", "liver"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn suggests_close_spellings_first_then_substrings() {
        let known = [
            "liver",
            "liver_vessels",
            "river",
            "spleen",
            "lung_upper_lobe_left",
        ];
        assert_eq!(suggest("livr", known), vec!["liver", "river"]);
        assert_eq!(suggest("LIVER", known)[0], "liver");
        assert_eq!(suggest("vessels", known), vec!["liver_vessels"]);
        assert!(suggest("xyz", known).is_empty());
    }
}
