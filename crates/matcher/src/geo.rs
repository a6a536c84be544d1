//! Geometry of the geo operators: great-circle distance and box containment.

use sluice_rules::{BoundingBox, Circle, DistanceUnit};

/// Mean Earth radius used by `point_radius:`, in kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0088;
/// Kilometres per statute mile.
const KM_PER_MILE: f64 = 1.609344;

/// Whether `[lon, lat]` lies within the circle (haversine distance ≤ radius).
pub(crate) fn in_circle(circle: &Circle, [lon, lat]: [f64; 2]) -> bool {
    let radius_km = match circle.unit {
        DistanceUnit::Kilometers => circle.radius,
        DistanceUnit::Miles => circle.radius * KM_PER_MILE,
    };
    let (phi1, phi2) = (circle.latitude.to_radians(), lat.to_radians());
    let dphi = (lat - circle.latitude).to_radians();
    let dlambda = (lon - circle.longitude).to_radians();
    let a = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    let distance = 2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin();
    distance <= radius_km
}

/// Most grid cells a region may cover and still be anchored on cells (beyond that the rule is
/// anchored on the `has:` flag, as every region once was).
const MAX_CELLS: usize = 64;

/// Safety margin added around a region before listing its cells, in degrees: far above any
/// floating-point error of the distance and box tests, so a point the exact test accepts is
/// always in a listed cell.
const CELL_MARGIN_DEG: f64 = 0.01;

/// The one-degree grid cell of a post's point `[lon, lat]`; `None` when the point is outside
/// the ranges cells cover (latitude beyond ±90, longitude beyond ±540, not finite), which
/// the caller must treat as "could be anywhere".
///
/// Longitude wraps (cells are taken modulo 360), as the haversine distance does.
pub(crate) fn point_cell([lon, lat]: [f64; 2]) -> Option<u32> {
    if !(-90.0..=90.0).contains(&lat) || !(-540.0..=540.0).contains(&lon) {
        return None;
    }
    Some(cell(lat.floor() as i64, lon.floor() as i64))
}

/// The cell at integer row `lat` (degrees, −90..=90) and column `lon` (degrees, any).
fn cell(lat: i64, lon: i64) -> u32 {
    let row = (lat + 90).clamp(0, 180);
    let col = (lon + 180).rem_euclid(360);
    u32::try_from(row * 360 + col).expect("row ≤ 180 and col < 360")
}

/// Every cell of the latitude band `south..=north` and longitude band `west..=east` (degrees,
/// margins already applied); `None` when that is more than [`MAX_CELLS`].
fn band_cells(south: f64, north: f64, west: f64, east: f64) -> Option<Vec<u32>> {
    let (south, north) = (south.max(-90.0).floor(), north.min(90.0).floor());
    let (west, east) = (west.floor(), east.floor());
    if !(south <= north && west <= east && east - west < 360.0) {
        return None;
    }
    let rows = (north - south) as usize + 1;
    let cols = (east - west) as usize + 1;
    if rows * cols > MAX_CELLS {
        return None;
    }
    let (south, west) = (south as i64, west as i64);
    let mut cells = Vec::with_capacity(rows * cols);
    for r in 0..rows as i64 {
        for c in 0..cols as i64 {
            cells.push(cell(south + r, west + c));
        }
    }
    Some(cells)
}

/// The cells that hold every point [`in_circle`] accepts, or `None` when the circle is too
/// large, too near a pole, or not a valid circle (the caller then uses a coarser anchor).
///
/// Points within angular distance δ of the centre have |Δlat| ≤ δ and, away from the
/// poles, |Δlon| ≤ asin(sin δ / cos lat₀).
pub(crate) fn circle_cells(circle: &Circle) -> Option<Vec<u32>> {
    let radius_km = match circle.unit {
        DistanceUnit::Kilometers => circle.radius,
        DistanceUnit::Miles => circle.radius * KM_PER_MILE,
    };
    let (lon0, lat0) = (circle.longitude, circle.latitude);
    if !(radius_km.is_finite() && (-90.0..=90.0).contains(&lat0) && lon0.abs() <= 540.0) {
        return None;
    }
    let delta = (radius_km.max(0.0) / EARTH_RADIUS_KM) * 1.001;
    let dlat = delta.to_degrees() + CELL_MARGIN_DEG;
    let (south, north) = (lat0 - dlat, lat0 + dlat);
    if south <= -90.0 || north >= 90.0 {
        return None;
    }
    let ratio = delta.sin() / lat0.to_radians().cos();
    if !(0.0..1.0).contains(&ratio) {
        return None;
    }
    let dlon = ratio.asin().to_degrees() * 1.001 + CELL_MARGIN_DEG;
    band_cells(south, north, lon0 - dlon, lon0 + dlon)
}

/// The cells that hold every point [`in_box`] accepts, or `None` when the box is too large
/// or not a valid box.
pub(crate) fn box_cells(b: &BoundingBox) -> Option<Vec<u32>> {
    if ![b.west, b.south, b.east, b.north]
        .iter()
        .all(|v| v.is_finite())
    {
        return None;
    }
    band_cells(
        b.south - CELL_MARGIN_DEG,
        b.north + CELL_MARGIN_DEG,
        b.west - CELL_MARGIN_DEG,
        b.east + CELL_MARGIN_DEG,
    )
}

/// Whether `[lon, lat]` lies within the box, edges included.
pub(crate) fn in_box(b: &BoundingBox, [lon, lat]: [f64; 2]) -> bool {
    b.west <= lon && lon <= b.east && b.south <= lat && lat <= b.north
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_uses_great_circle_distance_and_units() {
        // London to Paris is about 344 km.
        let london = Circle {
            longitude: -0.1276,
            latitude: 51.5072,
            radius: 350.0,
            unit: DistanceUnit::Kilometers,
        };
        assert!(in_circle(&london, [2.3522, 48.8566]));
        let small = Circle {
            radius: 200.0,
            unit: DistanceUnit::Miles,
            ..london
        };
        assert!(!in_circle(&small, [2.3522, 48.8566]));
        assert!(in_circle(&small, [-0.1276, 51.5072]));
    }

    #[test]
    fn cells_cover_every_point_the_exact_tests_accept() {
        let circles = [
            (-73.9857, 40.7484, 35.0, DistanceUnit::Kilometers),
            (179.95, -16.5, 20.0, DistanceUnit::Miles),
            (-179.99, 64.8, 25.0, DistanceUnit::Miles),
            (0.0, 0.0, 0.0, DistanceUnit::Kilometers),
        ];
        for (longitude, latitude, radius, unit) in circles {
            let circle = Circle {
                longitude,
                latitude,
                radius,
                unit,
            };
            let cells = circle_cells(&circle).expect("a small circle has cells");
            let mut inside = 0;
            for i in -60..=60 {
                for j in -60..=60 {
                    let p = [
                        longitude + f64::from(i) * 0.01,
                        latitude + f64::from(j) * 0.01,
                    ];
                    if in_circle(&circle, p) {
                        inside += 1;
                        let c = point_cell(p).expect("a valid point has a cell");
                        assert!(cells.contains(&c), "{circle:?} {p:?}");
                    }
                }
            }
            assert!(inside > 0);
        }
        let b = BoundingBox {
            west: -1.0,
            south: 2.0,
            east: 0.5,
            north: 3.0,
        };
        let cells = box_cells(&b).expect("a small box has cells");
        for p in [[-1.0, 2.0], [0.5, 3.0], [0.0, 2.5]] {
            assert!(cells.contains(&point_cell(p).expect("valid")));
        }
        assert_eq!(point_cell([540.5, 0.0]), None);
        assert_eq!(point_cell([0.0, 90.5]), None);
        assert_eq!(point_cell([180.0, 0.0]), point_cell([-180.0, 0.0]));
        let polar = Circle {
            longitude: 0.0,
            latitude: 89.9,
            radius: 30.0,
            unit: DistanceUnit::Kilometers,
        };
        assert_eq!(circle_cells(&polar), None);
    }

    #[test]
    fn box_includes_its_edges() {
        let b = BoundingBox {
            west: -1.0,
            south: -1.0,
            east: 1.0,
            north: 1.0,
        };
        assert!(in_box(&b, [1.0, -1.0]));
        assert!(!in_box(&b, [1.0001, 0.0]));
    }
}
