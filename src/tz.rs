//! Local time in IANA time zones, for anything that follows the clock of a place:
//! a checked [`Zone`], the local hour and weekday of an instant
//! ([`local_hour_and_weekday`]), and a daily [`Window`] of hours on some weekdays.
//!
//! The zone database is the one compiled into the binary (jiff's bundled copy), not
//! the machine's `/usr/share/zoneinfo`: it works where that folder is missing, and the
//! same `--seed --start-time` gives the same output on every machine.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// An IANA time zone that exists in the bundled database (e.g. `America/Los_Angeles`).
#[derive(Clone, Debug)]
pub struct Zone {
    /// The name as written.
    name: String,
    tz: TimeZone,
}

impl Zone {
    /// Looks `name` up (case-insensitively, as the database does); an unknown name is
    /// an error saying what is valid, with the closest known name when one is near.
    pub fn parse(name: &str) -> Result<Zone, String> {
        let db = jiff::tz::db();
        match db.get(name) {
            Ok(tz) => Ok(Zone {
                name: name.to_string(),
                tz,
            }),
            Err(_) => {
                let names: Vec<String> = db.available().map(|n| n.to_string()).collect();
                let hint = crate::diag::closest(name, names.iter().map(String::as_str))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                Err(format!(
                    "unknown time zone `{name}`{hint}; expected an IANA time-zone name such as America/Los_Angeles, Europe/Berlin or UTC"
                ))
            }
        }
    }

    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".to_string(),
            tz: TimeZone::UTC,
        }
    }

    /// The name as written in the input.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The local hour (0..=23) and ISO weekday (1 = Monday ..= 7 = Sunday) in `zone` at
/// `unix_ns` (nanoseconds since the Unix epoch).
pub fn local_hour_and_weekday(zone: &Zone, unix_ns: u64) -> (u8, u8) {
    // Every u64 of nanoseconds (up to the year 2554) is a valid timestamp.
    let ts = Timestamp::from_nanosecond(i128::from(unix_ns)).unwrap_or(Timestamp::UNIX_EPOCH);
    let local = zone.tz.to_datetime(ts);
    (
        local.hour().clamp(0, 23) as u8,
        local.weekday().to_monday_one_offset().clamp(1, 7) as u8,
    )
}

/// Hours of the day on some weekdays, in a zone: `start_hour <= hour < end_hour`.
///
/// `start_hour > end_hour` wraps past midnight (22 → 6 is 22:00 to 06:00); the hours
/// after midnight belong to the weekday the window started on (Friday 22 → 6 covers
/// Saturday 03:00). `start_hour == end_hour` means all day.
#[derive(Clone, Debug)]
pub struct Window {
    /// Where the hours are read.
    pub zone: Zone,
    /// Bit `d - 1` set: ISO weekday `d` (1 = Monday) is in the window.
    weekdays: u8,
    /// First hour in the window, 0..=23.
    pub start_hour: u8,
    /// First hour after the window, 0..=24.
    pub end_hour: u8,
}

impl Window {
    /// A checked window: `weekdays` are ISO weekdays 1..=7 (empty: every day),
    /// `start_hour` 0..=23, `end_hour` 0..=24.
    pub fn new(
        zone: Zone,
        weekdays: &[u8],
        start_hour: u8,
        end_hour: u8,
    ) -> Result<Window, String> {
        if start_hour > 23 {
            return Err(format!(
                "start hour {start_hour} is out of range; expected 0 to 23"
            ));
        }
        if end_hour > 24 {
            return Err(format!(
                "end hour {end_hour} is out of range; expected 0 to 24"
            ));
        }
        let mut mask = 0u8;
        for &d in weekdays {
            if !(1..=7).contains(&d) {
                return Err(format!(
                    "weekday {d} is out of range; expected 1 (Monday) to 7 (Sunday)"
                ));
            }
            mask |= 1 << (d - 1);
        }
        Ok(Window {
            zone,
            weekdays: if mask == 0 { 0x7f } else { mask },
            start_hour,
            end_hour,
        })
    }

    /// Whether ISO weekday `d` is one of the window's days.
    pub fn has_weekday(&self, d: u8) -> bool {
        (1..=7).contains(&d) && self.weekdays & (1 << (d - 1)) != 0
    }

    /// Whether the window holds the instant `unix_ns`.
    pub fn is_active(&self, unix_ns: u64) -> bool {
        let (h, d) = local_hour_and_weekday(&self.zone, unix_ns);
        let (s, e) = (self.start_hour, self.end_hour);
        if s == e {
            self.has_weekday(d)
        } else if s < e {
            self.has_weekday(d) && s <= h && h < e
        } else {
            // Before midnight on a window day, or after it on the day after one.
            let yesterday = if d == 1 { 7 } else { d - 1 };
            (h >= s && self.has_weekday(d)) || (h < e && self.has_weekday(yesterday))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix ns of an RFC 3339 instant.
    fn at(rfc3339: &str) -> u64 {
        let ts: Timestamp = rfc3339.parse().expect("valid instant");
        ts.as_nanosecond() as u64
    }

    #[test]
    fn dst_zone_gives_the_local_hour_in_summer_and_in_winter() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        // 2024-07-15 15:00 UTC is 08:00 PDT (UTC-7), a Monday.
        assert_eq!(
            local_hour_and_weekday(&la, at("2024-07-15T15:00:00Z")),
            (8, 1)
        );
        // 2024-01-15 15:00 UTC is 07:00 PST (UTC-8), a Monday.
        assert_eq!(
            local_hour_and_weekday(&la, at("2024-01-15T15:00:00Z")),
            (7, 1)
        );
        // Around the spring-forward on 2024-03-10: 01:59 PST, then 03:00 PDT.
        assert_eq!(local_hour_and_weekday(&la, at("2024-03-10T09:59:00Z")).0, 1);
        assert_eq!(local_hour_and_weekday(&la, at("2024-03-10T10:00:00Z")).0, 3);
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(
            local_hour_and_weekday(&berlin, at("2024-07-15T15:00:00Z")).0,
            17
        );
        assert_eq!(
            local_hour_and_weekday(&berlin, at("2024-01-15T15:00:00Z")).0,
            16
        );
    }

    #[test]
    fn the_weekday_is_the_local_one() {
        let tokyo = Zone::parse("Asia/Tokyo").unwrap();
        // Sunday 2024-01-14 20:00 UTC is Monday 05:00 in Tokyo.
        assert_eq!(
            local_hour_and_weekday(&tokyo, at("2024-01-14T20:00:00Z")),
            (5, 1)
        );
        assert_eq!(
            local_hour_and_weekday(&Zone::utc(), at("2024-01-14T20:00:00Z")),
            (20, 7)
        );
    }

    #[test]
    fn unknown_zones_are_refused_with_a_hint() {
        let e = Zone::parse("America/Los_Angles").unwrap_err();
        assert!(e.contains("did you mean `America/Los_Angeles`"), "{e}");
        assert!(e.contains("IANA"), "{e}");
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(Zone::parse("UTC").unwrap().name(), "UTC");
    }

    #[test]
    fn windows_hold_their_hours_on_their_days() {
        let utc = Zone::utc();
        // Monday to Friday, 9 to 17.
        let w = Window::new(utc.clone(), &[1, 2, 3, 4, 5], 9, 17).unwrap();
        assert!(w.is_active(at("2024-01-15T09:00:00Z")));
        assert!(w.is_active(at("2024-01-15T16:59:59Z")));
        assert!(!w.is_active(at("2024-01-15T17:00:00Z")));
        assert!(!w.is_active(at("2024-01-15T08:59:59Z")));
        assert!(!w.is_active(at("2024-01-13T10:00:00Z")), "Saturday");
        // Friday 22 to 6: Saturday 03:00 is in, Friday 03:00 is not (Thursday is no day).
        let night = Window::new(utc.clone(), &[5], 22, 6).unwrap();
        assert!(night.is_active(at("2024-01-19T22:30:00Z")));
        assert!(night.is_active(at("2024-01-20T03:00:00Z")));
        assert!(!night.is_active(at("2024-01-19T03:00:00Z")));
        assert!(!night.is_active(at("2024-01-20T06:00:00Z")));
        // Equal hours: all day, on its days; no days listed: every day.
        let always = Window::new(utc.clone(), &[], 0, 0).unwrap();
        assert!(always.is_active(at("2024-01-13T00:00:00Z")));
        assert!(always.is_active(at("2024-01-17T23:59:59Z")));
        let sundays = Window::new(utc, &[7], 5, 5).unwrap();
        assert!(sundays.is_active(at("2024-01-14T23:00:00Z")));
        assert!(!sundays.is_active(at("2024-01-15T01:00:00Z")));
    }

    #[test]
    fn windows_read_hours_in_their_zone() {
        let la = Zone::parse("America/Los_Angeles").unwrap();
        let w = Window::new(la, &[], 8, 9).unwrap();
        assert!(w.is_active(at("2024-07-15T15:30:00Z")), "08:30 PDT");
        assert!(!w.is_active(at("2024-01-15T15:30:00Z")), "07:30 PST");
        assert!(w.is_active(at("2024-01-15T16:30:00Z")), "08:30 PST");
    }

    #[test]
    fn bad_windows_are_refused() {
        let utc = Zone::utc();
        assert!(Window::new(utc.clone(), &[], 24, 3).is_err());
        assert!(Window::new(utc.clone(), &[], 3, 25).is_err());
        assert!(Window::new(utc.clone(), &[0], 3, 4).is_err());
        assert!(Window::new(utc, &[8], 3, 4).is_err());
    }
}
