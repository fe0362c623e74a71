//! How lists of values combine into points, for `[sweep]` and
//! `[simulation]` alike: a grid takes every combination (the first list
//! varying slowest), a zip takes the i-th values together, a list of one
//! value standing for every i.

/// `combine = "grid"` or `"zip"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Combine {
    #[default]
    Grid,
    Zip,
}

impl Combine {
    /// `grid` or `zip`.
    pub fn parse(s: &str) -> Result<Combine, String> {
        match s {
            "grid" => Ok(Combine::Grid),
            "zip" => Ok(Combine::Zip),
            other => Err(format!("'{other}' is not \"grid\" or \"zip\"")),
        }
    }

    /// How many points lists of these lengths give (saturating), so a caller
    /// can refuse a huge grid before it is built.
    pub fn count(self, lengths: &[usize]) -> usize {
        match self {
            Combine::Grid => lengths.iter().fold(1usize, |n, &l| n.saturating_mul(l)),
            Combine::Zip => lengths.iter().copied().max().unwrap_or(0),
        }
    }

    /// Each point's index into each list. A zip refuses a list whose length
    /// is neither 1 nor the longest's: `Err((list, message))`.
    pub fn points(self, lengths: &[usize]) -> Result<Vec<Vec<usize>>, (usize, String)> {
        match self {
            Combine::Grid => {
                let mut points = vec![vec![]];
                for &l in lengths {
                    points = points
                        .into_iter()
                        .flat_map(|p: Vec<usize>| {
                            (0..l).map(move |i| {
                                let mut p = p.clone();
                                p.push(i);
                                p
                            })
                        })
                        .collect();
                }
                Ok(points)
            }
            Combine::Zip => {
                let len = self.count(lengths);
                if let Some(k) = lengths.iter().position(|&l| l != 1 && l != len) {
                    return Err((
                        k,
                        format!(
                            "zipped lists must have one value or {len}; this has {}",
                            lengths[k]
                        ),
                    ));
                }
                Ok((0..len)
                    .map(|i| {
                        lengths
                            .iter()
                            .map(|&l| if l == 1 { 0 } else { i })
                            .collect()
                    })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_vary_the_first_list_slowest_and_zips_broadcast_single_values() {
        let grid = Combine::Grid.points(&[2, 3]).unwrap();
        assert_eq!(grid.len(), Combine::Grid.count(&[2, 3]));
        assert_eq!(grid[..4], [vec![0, 0], vec![0, 1], vec![0, 2], vec![1, 0]]);
        let zip = Combine::Zip.points(&[3, 1, 3]).unwrap();
        assert_eq!(zip, [vec![0, 0, 0], vec![1, 0, 1], vec![2, 0, 2]]);
        let (k, message) = Combine::Zip.points(&[3, 1, 2]).unwrap_err();
        assert_eq!(k, 2);
        assert!(message.contains("one value or 3; this has 2"), "{message}");
        assert_eq!(Combine::parse("zip"), Ok(Combine::Zip));
        assert!(Combine::parse("cross").is_err());
    }
}
