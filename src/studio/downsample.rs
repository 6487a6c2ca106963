//! Fewer points for a long curve, keeping its shape: the points are cut into equal buckets and
//! each bucket keeps its lowest and its highest point (in step order), so every spike and
//! every dip of the full curve is still drawn; the first and last points are always kept.

/// At most `max_points` of `points` (sorted by x), with each bucket's minimum and maximum.
pub fn min_max(points: &[(u64, f64)], max_points: usize) -> Vec<(u64, f64)> {
    if points.len() <= max_points || max_points < 4 {
        return points.to_vec();
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let inner = &points[1..points.len() - 1];
    let buckets = (max_points - 2) / 2;
    let mut out = Vec::with_capacity(max_points);
    out.push(first);
    for b in 0..buckets {
        let start = b * inner.len() / buckets;
        let end = (b + 1) * inner.len() / buckets;
        let bucket = &inner[start..end];
        let (Some(lo), Some(hi)) = (
            bucket.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            bucket.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        ) else {
            continue;
        };
        if lo.0 == hi.0 {
            out.push(*lo);
        } else if lo.0 < hi.0 {
            out.extend([*lo, *hi]);
        } else {
            out.extend([*hi, *lo]);
        }
    }
    out.push(last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_curves_are_untouched() {
        let p: Vec<(u64, f64)> = (1..=10).map(|i| (i, i as f64)).collect();
        assert_eq!(min_max(&p, 2000), p);
    }

    #[test]
    fn long_curves_keep_their_bound_order_and_extremes() {
        let mut p: Vec<(u64, f64)> = (1..=100_000u64)
            .map(|i| (i, 2.0 + ((i as f64) / 500.0).sin()))
            .collect();
        p[31_337].1 = 50.0; // a spike
        p[77_777].1 = -3.0; // a dip
        let d = min_max(&p, 2000);
        assert!(d.len() <= 2000, "{}", d.len());
        assert!(d.len() >= 1990, "{}", d.len());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "steps ascend");
        assert!(d.contains(&(31_338, 50.0)));
        assert!(d.contains(&(77_778, -3.0)));
        assert_eq!(d[0], p[0]);
        assert_eq!(d[d.len() - 1], p[p.len() - 1]);
    }
}
