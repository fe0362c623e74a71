//! Serial mediation (Hayes' PROCESS model 6): the mediators form a chain
//! in their order. Mediator j is regressed on the treatment, the controls
//! and the mediators before it (its coefficient on mediator k < j is the
//! link `d_jk`); the outcome on the treatment and every mediator, as in
//! the parallel model. An indirect path runs X -> M_p1 -> ... -> M_pr -> Y
//! through an increasing set of mediators, and its effect is the product
//! of its coefficients, `a_p1 d_p2p1 ... d_prp(r-1) b_pr`; the total
//! indirect effect is the sum over all 2^m - 1 paths.
//!
//! The parallel model is the chain without links: its paths are the m
//! single mediators, so the point estimate's delta method and every
//! replicate treat both through the one description here.
//!
//! Path coefficients ("theta" below) are `a_1..a_m, b_1..b_m`, then each
//! link `d_jk` in [`Chain::links`]'s order.

/// The longest chain medsim fits (2^4 - 1 = 15 paths, 105 contrasts).
pub const MAX_MEDIATORS: usize = 4;

/// The paths, links and contrasts of m mediators, serial or parallel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub m: usize,
    pub serial: bool,
    /// Every indirect path as the increasing mediators it passes: each
    /// mediator alone first (the parallel model's a_j b_j), then the paths
    /// through two or more, shorter first, each length in lexicographic
    /// order (for three: 1, 2, 3, 12, 13, 23, 123).
    pub paths: Vec<Vec<usize>>,
    /// The links (to, from), from < to, ordered by `to`, then `from`
    /// (d21, d31, d32, d41, ...); none in the parallel model.
    pub links: Vec<(usize, usize)>,
    /// Pairs of paths (p, q), p < q, whose difference is reported: first
    /// the pairs of single mediators (the parallel model's contrasts), then
    /// the pairs with a longer path, each in lexicographic order.
    pub contrasts: Vec<(usize, usize)>,
}

impl Chain {
    pub fn new(m: usize, serial: bool) -> Chain {
        let mut paths: Vec<Vec<usize>> = (0..m).map(|j| vec![j]).collect();
        if serial {
            for len in 2..=m {
                let mut longer: Vec<Vec<usize>> = (1u32..1 << m)
                    .filter(|set| set.count_ones() as usize == len)
                    .map(|set| (0..m).filter(|j| set & (1 << j) != 0).collect())
                    .collect();
                longer.sort();
                paths.extend(longer);
            }
        }
        let links = match serial {
            true => (0..m)
                .flat_map(|to| (0..to).map(move |from| (to, from)))
                .collect(),
            false => Vec::new(),
        };
        let n = paths.len();
        let pairs = (0..n).flat_map(|p| (p + 1..n).map(move |q| (p, q)));
        let mut contrasts: Vec<(usize, usize)> = pairs.clone().filter(|&(_, q)| q < m).collect();
        contrasts.extend(pairs.filter(|&(_, q)| q >= m));
        Chain {
            m,
            serial,
            paths,
            links,
            contrasts,
        }
    }

    /// Path coefficients: 2m paths plus the links.
    pub fn theta_len(&self) -> usize {
        2 * self.m + self.links.len()
    }

    /// theta's position of the link `d_{to, from}`.
    pub fn link(&self, to: usize, from: usize) -> usize {
        let i = self
            .links
            .iter()
            .position(|&l| l == (to, from))
            .expect("a link of the chain");
        2 * self.m + i
    }

    /// The paths through two mediators or more (the serial model's own).
    pub fn longer(&self) -> &[Vec<usize>] {
        &self.paths[self.m..]
    }

    /// The contrasts beyond the parallel model's (those with a longer
    /// path).
    pub fn longer_contrasts(&self) -> &[(usize, usize)] {
        let plain = self.m * self.m.saturating_sub(1) / 2;
        &self.contrasts[plain..]
    }

    /// The theta positions whose product is `path`'s effect.
    pub fn factors(&self, path: &[usize]) -> Vec<usize> {
        let mut f = vec![path[0]];
        for w in path.windows(2) {
            f.push(self.link(w[1], w[0]));
        }
        f.push(self.m + path[path.len() - 1]);
        f
    }

    /// `path`'s effect at theta.
    pub fn effect(&self, theta: &[f64], path: &[usize]) -> f64 {
        self.factors(path).iter().map(|&i| theta[i]).product()
    }

    /// `path`'s effect and its gradient in theta.
    pub fn effect_and_gradient(&self, theta: &[f64], path: &[usize]) -> (f64, Vec<f64>) {
        let f = self.factors(path);
        let mut g = vec![0.0; theta.len()];
        for (k, &i) in f.iter().enumerate() {
            // The product of the other factors (not value / theta_i: a
            // coefficient may be 0).
            g[i] = f
                .iter()
                .enumerate()
                .filter(|&(l, _)| l != k)
                .map(|(_, &o)| theta[o])
                .product();
        }
        (self.effect(theta, path), g)
    }

    /// The total indirect effect (every path's) at theta.
    pub fn total(&self, theta: &[f64]) -> f64 {
        self.paths.iter().map(|p| self.effect(theta, p)).sum()
    }

    /// Each path's effect, then the total, then each contrast, at theta:
    /// one replicate's (or one Monte Carlo draw's) indirect effects.
    pub fn indirect_effects(&self, theta: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(self.paths.iter().map(|p| self.effect(theta, p)));
        let total = out.iter().sum();
        for &(p, q) in &self.contrasts {
            out.push(out[p] - out[q]);
        }
        out.insert(self.paths.len(), total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_of_three_has_seven_paths_three_links_and_21_contrasts() {
        let c = Chain::new(3, true);
        let want: Vec<Vec<usize>> = vec![
            vec![0],
            vec![1],
            vec![2],
            vec![0, 1],
            vec![0, 2],
            vec![1, 2],
            vec![0, 1, 2],
        ];
        assert_eq!(c.paths, want);
        assert_eq!(c.links, vec![(1, 0), (2, 0), (2, 1)]);
        assert_eq!(c.contrasts.len(), 21);
        assert_eq!(&c.contrasts[..3], &[(0, 1), (0, 2), (1, 2)]);
        assert_eq!(c.longer_contrasts().len(), 18);
        assert_eq!(Chain::new(4, true).paths.len(), 15);
        assert_eq!(Chain::new(4, true).contrasts.len(), 105);
        // The parallel model: singles and their contrasts only.
        let p = Chain::new(3, false);
        assert_eq!(p.paths.len(), 3);
        assert!(p.links.is_empty() && p.longer().is_empty());
        assert_eq!(p.contrasts, vec![(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn path_effects_are_products_and_gradients_their_derivatives() {
        let c = Chain::new(3, true);
        // a1 a2 a3 b1 b2 b3 d21 d31 d32
        let theta = [0.5, -0.3, 0.2, 0.7, 1.1, -0.4, 0.6, 0.0, -0.8];
        // X -> M1 -> M2 -> M3 -> Y = a1 d21 d32 b3.
        let (v, g) = c.effect_and_gradient(&theta, &[0, 1, 2]);
        assert_eq!(v, 0.5 * 0.6 * -0.8 * -0.4);
        // d31 is 0 but its derivative along X -> M1 -> M3 -> Y is not.
        let (v13, g13) = c.effect_and_gradient(&theta, &[0, 2]);
        assert_eq!(v13, 0.0);
        assert_eq!(g13[7], 0.5 * -0.4);
        for i in 0..theta.len() {
            let mut t = theta;
            t[i] += 1e-6;
            let up = c.effect(&t, &[0, 1, 2]);
            t[i] -= 2e-6;
            let down = c.effect(&t, &[0, 1, 2]);
            assert!(((up - down) / 2e-6 - g[i]).abs() < 1e-9, "{i}");
        }
        let mut all = Vec::new();
        c.indirect_effects(&theta, &mut all);
        assert_eq!(all.len(), 7 + 1 + 21);
        assert!((all[7] - c.total(&theta)).abs() < 1e-15);
        assert_eq!(all[8], all[0] - all[1]);
    }
}
