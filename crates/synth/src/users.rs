//! The synthetic user population: every profile is a pure function of the user's index.
//!
//! Posts and rules are generated with different seeds, but `from:jamessmith` must name an
//! account that actually posts, with the same id and the same profile in every post. So a
//! user is not drawn from a generator's random stream: index → profile is fixed, and only
//! *which* index writes a post is random (Zipf: a few accounts are very active).

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

use crate::vocab::{Language, Vocabulary, capitalize};
use crate::words::{CITIES, City, FIRST_NAMES, SURNAMES};

/// A user's profile, as X's `user` object needs it.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub id: u64,
    pub screen_name: String,
    pub name: String,
    pub language: Language,
    pub description: String,
    pub location: Option<String>,
    pub url: Option<String>,
    pub verified: bool,
    pub protected: bool,
    pub followers_count: u64,
    pub friends_count: u64,
    pub listed_count: u64,
    pub favourites_count: u64,
    pub statuses_count: u64,
    pub created_at_ms: u64,
    /// Index into [`CITIES`] of the Profile Geo enrichment, when the user has one.
    pub profile_city: Option<usize>,
    pub default_profile: bool,
}

impl Profile {
    /// The Profile Geo city, if any.
    pub fn city(&self) -> Option<&'static City> {
        self.profile_city.map(|i| &CITIES[i])
    }
}

/// The user id of user `index`: old accounts have short ids, newer ones Snowflake-sized ids,
/// as on X. Distinct for distinct indexes.
pub(crate) fn user_id(index: u32) -> u64 {
    let i = u64::from(index);
    if i % 4 == 0 {
        12_000_000 + i * 7_919
    } else {
        1_100_000_000_000_000_000 + i * 1_000_003_597
    }
}

/// The screen name of user `index` (`jamessmith`, `maria_lopez12`, `EmmaSilva`). Distinct for distinct
/// indexes: the (first name, surname, number) triple is unique per index.
pub(crate) fn screen_name(index: u32) -> String {
    let (first, last, number) = name_parts(index);
    let style = mix(u64::from(index)) % 4;
    let mut name = match style {
        0 => format!("{first}{last}"),
        1 => format!("{first}_{last}"),
        2 => format!("{}{}", capitalize(first), capitalize(last)),
        _ => format!("real{first}{last}"),
    };
    if number > 0 {
        name.push_str(&number.to_string());
    }
    name
}

fn name_parts(index: u32) -> (&'static str, &'static str, u32) {
    let f = FIRST_NAMES.len() as u32;
    let s = SURNAMES.len() as u32;
    (
        FIRST_NAMES[(index % f) as usize],
        SURNAMES[((index / f) % s) as usize],
        index / (f * s),
    )
}

/// Builds the full profile of user `index`.
pub(crate) fn profile(vocab: &Vocabulary, index: u32) -> Profile {
    let mut rng = Pcg64Mcg::seed_from_u64(mix(u64::from(index) ^ 0x05e7_u64));
    let (first, last, _) = name_parts(index);
    let language = match rng.random_range(0..100) {
        0..62 => Language::English,
        62..77 => Language::Spanish,
        77..88 => Language::Portuguese,
        _ => Language::Japanese,
    };
    let popularity = 1.0 / (f64::from(index) + 1.0).powf(0.8);
    let noise = LogNormal::new(0.0, 0.8).expect("valid log-normal");
    let followers =
        (30_000_000.0 * popularity * noise.sample(&mut rng)) as u64 + rng.random_range(0..300);
    let verified = index < 300 || rng.random_bool(0.01);

    let mut description = String::new();
    for i in 0..rng.random_range(3..12) {
        if i > 0 && language.spaced() {
            description.push(' ');
        }
        description.push_str(vocab.word(language, &mut rng));
    }
    if rng.random_bool(0.3) {
        description.push_str(" #");
        description.push_str(vocab.hashtags.sample(&mut rng));
    }
    if rng.random_bool(0.3) {
        description.push(' ');
        description.push_str(vocab.emoji.sample(&mut rng));
    }

    let profile_city = rng
        .random_bool(0.35)
        .then(|| rng.random_range(0..CITIES.len()));
    let location = match (profile_city, rng.random_range(0..10)) {
        (Some(c), 0..8) => Some(format!("{}, {}", CITIES[c].name, CITIES[c].short)),
        (_, 0..3) => Some(
            ["Earth 🌍", "somewhere", "the internet", "home"][rng.random_range(0..4)].to_owned(),
        ),
        _ => None,
    };
    let url = rng
        .random_bool(0.3)
        .then(|| format!("https://t.co/{}", tco_code(&mut rng)));
    // Accounts from 2008 to 2025.
    let created_at_ms = 1_200_000_000_000 + rng.random_range(0..540_000_000_000u64);
    Profile {
        id: user_id(index),
        screen_name: screen_name(index),
        name: if rng.random_bool(0.15) {
            format!(
                "{} {} {}",
                capitalize(first),
                capitalize(last),
                vocab.emoji.sample(&mut rng)
            )
        } else {
            format!("{} {}", capitalize(first), capitalize(last))
        },
        language,
        description,
        location,
        url,
        verified,
        protected: false,
        followers_count: followers,
        friends_count: rng.random_range(0..5_000),
        listed_count: followers / 200 + rng.random_range(0..10),
        favourites_count: rng.random_range(0..200_000),
        statuses_count: rng.random_range(10..500_000),
        created_at_ms,
        profile_city,
        default_profile: rng.random_bool(0.2),
    }
}

/// A t.co short-link code: ten alphanumerics.
pub(crate) fn tco_code<R: Rng + ?Sized>(rng: &mut R) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// SplitMix64's finalizer: turns an index into well-spread seed bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::vocab::USER_POPULATION;

    #[test]
    fn ids_and_screen_names_are_unique_across_the_population() {
        let mut ids = HashSet::new();
        let mut names = HashSet::new();
        for i in 0..USER_POPULATION {
            assert!(ids.insert(user_id(i)));
            assert!(
                names.insert(screen_name(i).to_lowercase()),
                "{}",
                screen_name(i)
            );
        }
    }

    #[test]
    fn profiles_are_a_function_of_the_index() {
        let v = Vocabulary::shared();
        let a = profile(v, 42);
        let b = profile(v, 42);
        assert_eq!(a.description, b.description);
        assert_eq!(a.followers_count, b.followers_count);
        assert_eq!(a.screen_name, screen_name(42));
        assert!(profile(v, 0).followers_count > profile(v, 150_000).followers_count);
    }
}
