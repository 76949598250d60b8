//! The few numerical routines the analytics need, written here rather than pulled in from a large
//! statistics crate: the normal distribution (CDF and quantile), Student's t quantile, dense
//! symmetric linear algebra (Cholesky), a log-linear count regression (variance `μ + κμ²`, κ by
//! moments) fitted by IRLS with both model-based and robust HC3 sandwich covariances, empirical
//! quantiles, and a small seeded random generator for deterministic Monte Carlo.
//!
//! Accuracy: the normal CDF is good to ~1.2e-7 (relative), the quantile to ~1.2e-9, the t
//! quantile (a four-term Cornish–Fisher expansion) to ~1e-3 for 5+ degrees of freedom and far
//! better for the hundreds the A/B analysis has. Every routine is tested against reference values.

/// Standard normal CDF, from the complementary error function (Numerical Recipes' Chebyshev fit,
/// fractional error below 1.2e-7 everywhere).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9).
/// `p` outside (0, 1) gives ±infinity.
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.024_25;
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Student's t quantile with `df` degrees of freedom (Cornish–Fisher expansion around the normal
/// quantile; A&S 26.7.5). Below 3 degrees of freedom the expansion is poor, so those are treated
/// as 3 (conservatively wide for our uses, which never have so few).
pub(crate) fn t_quantile(p: f64, df: f64) -> f64 {
    let z = normal_quantile(p);
    if !z.is_finite() || df.is_infinite() {
        return z;
    }
    let v = df.max(3.0);
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
}

/// Empirical quantile of sorted data, linear interpolation between order statistics (Hyndman &
/// Fan type 7, R's default). `None` for no data.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// A dense symmetric positive-definite matrix's Cholesky factor `L` (row-major, lower), or `None`
/// when the matrix is not numerically positive definite (collinear design columns).
pub(crate) fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    let max_diag = (0..n).map(|i| a[i * n + i].abs()).fold(0.0, f64::max);
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                // A pivot this small relative to the largest diagonal means a (near-)collinear
                // column: refuse rather than return wildly unstable coefficients.
                if s <= max_diag * 1e-12 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b` given the Cholesky factor.
pub(crate) fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * x[k];
        }
        x[i] = s / l[i * n + i];
    }
    x
}

/// The inverse of the matrix whose Cholesky factor is `l`.
pub(crate) fn cholesky_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    let mut e = vec![0.0; n];
    for j in 0..n {
        e.iter_mut().for_each(|v| *v = 0.0);
        e[j] = 1.0;
        let col = cholesky_solve(l, n, &e);
        for i in 0..n {
            inv[i * n + j] = col[i];
        }
    }
    inv
}

/// Generalised least squares `y = Xβ + ε`, `Cov ε = V` known: what a reference that knows the
/// noise process (correlated hours and all) estimates, the best linear unbiased estimate.
#[derive(Debug, Clone)]
pub struct GlsFit {
    pub coef: Vec<f64>,
    /// `(XᵀV⁻¹X)⁻¹`, row-major.
    pub cov: Vec<f64>,
    /// The Gaussian log-likelihood at `β̂` minus `½ log det(XᵀV⁻¹X)`: the log of the evidence for
    /// this model (flat priors on β), to weigh competing models of the same data.
    pub log_evidence: f64,
}

/// [`GlsFit`] of `rows` (each of `p` columns) against `y` with the covariance `v` (`n×n`,
/// row-major); `None` when `v` or the design is not positive definite.
pub fn gls(rows: &[Vec<f64>], y: &[f64], v: &[f64]) -> Option<GlsFit> {
    let n = y.len();
    let p = rows.first()?.len();
    let l = cholesky(v, n)?;
    // Whitened: L z = y and L X̃ = X, by forward substitution.
    let forward = |b: &[f64]| {
        let mut z = vec![0.0; n];
        for i in 0..n {
            let s: f64 = (0..i).map(|k| l[i * n + k] * z[k]).sum();
            z[i] = (b[i] - s) / l[i * n + i];
        }
        z
    };
    let z = forward(y);
    let columns: Vec<Vec<f64>> = (0..p).map(|j| forward(&rows.iter().map(|r| r[j]).collect::<Vec<_>>())).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut information = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            information[i * p + j] = dot(&columns[i], &columns[j]);
        }
    }
    let xtz: Vec<f64> = columns.iter().map(|c| dot(c, &z)).collect();
    let li = cholesky(&information, p)?;
    let coef = cholesky_solve(&li, p, &xtz);
    let residual_ss: f64 = (0..n).map(|i| (z[i] - (0..p).map(|j| columns[j][i] * coef[j]).sum::<f64>()).powi(2)).sum();
    let log_det_v: f64 = (0..n).map(|i| 2.0 * l[i * n + i].ln()).sum();
    let log_det_information: f64 = (0..p).map(|i| 2.0 * li[i * p + i].ln()).sum();
    let log_evidence = -0.5 * (residual_ss + log_det_v + log_det_information);
    Some(GlsFit { coef, cov: cholesky_inverse(&li, p), log_evidence })
}

/// `A B A` for symmetric `n×n` matrices (the sandwich).
fn sandwich(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut ab = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik != 0.0 {
                for j in 0..n {
                    ab[i * n + j] += aik * b[k * n + j];
                }
            }
        }
    }
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let v = ab[i * n + k];
            if v != 0.0 {
                for j in 0..n {
                    out[i * n + j] += v * a[k * n + j];
                }
            }
        }
    }
    out
}

/// A design matrix: `rows × cols`, row-major.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Design {
    pub fn new(cols: usize) -> Self {
        Self { cols, data: Vec::new() }
    }

    pub fn push_row(&mut self, row: &[f64]) {
        debug_assert_eq!(row.len(), self.cols);
        self.data.extend_from_slice(row);
    }

    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.cols).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// A fitted log-linear count model `log E[y] = offset + Xβ` with variance `μ + κμ²`.
///
/// The quadratic term is what hour-to-hour multiplicative noise produces (a log-normal factor
/// with deviation σ gives `κ = e^{σ²} − 1`); `κ = 0` is Poisson. Weighting each hour by
/// `μ/(1 + κμ)` instead of Poisson's `μ` stops the busiest hours from dominating the estimates,
/// which matters: at typical traffic the multiplicative noise dwarfs the Poisson noise.
#[derive(Debug, Clone)]
pub(crate) struct CountFit {
    pub coef: Vec<f64>,
    /// `φ (XᵀWX)⁻¹` with the Pearson dispersion `φ = Σ (y−μ)²/V(μ) / (n−p)` (at least 1): right
    /// when the variance function is right.
    pub cov_model: Vec<f64>,
    /// The HC3 sandwich `(XᵀWX)⁻¹ (Σ xᵢxᵢᵀ uᵢ²/(1−hᵢ)²) (XᵀWX)⁻¹`, `uᵢ = (yᵢ−μᵢ)/(1+κμᵢ)`: right
    /// whatever the variance function, and the leverage correction keeps it from being
    /// optimistic with tens of nuisance parameters.
    pub cov_robust: Vec<f64>,
    /// The cluster-robust sandwich (scores summed within each cluster, × G/(G − nested)) when
    /// the observations come in clusters whose noise may be correlated (the hours of one
    /// rotation period): right whatever the correlation inside a cluster.
    pub cov_clustered: Option<Vec<f64>>,
    /// The extra-Poisson variance coefficient κ (method of moments).
    pub kappa: f64,
    pub df_resid: usize,
}

impl CountFit {
    pub fn p(&self) -> usize {
        self.coef.len()
    }

    /// Variance of the linear combination `gᵀβ` under a covariance matrix.
    pub fn var_of(cov: &[f64], g: &[f64]) -> f64 {
        let p = g.len();
        let mut s = 0.0;
        for i in 0..p {
            for j in 0..p {
                s += g[i] * cov[i * p + j] * g[j];
            }
        }
        s
    }

    /// The largest of the model-based, robust and cluster-robust variances of `gᵀβ`: neither a
    /// wrong variance function, nor noise correlated from hour to hour, nor a sandwich's
    /// small-sample noise makes an interval too narrow.
    pub fn conservative_var(&self, g: &[f64]) -> f64 {
        let clustered = self.cov_clustered.as_ref().map_or(0.0, |cov| Self::var_of(cov, g));
        Self::var_of(&self.cov_model, g).max(Self::var_of(&self.cov_robust, g)).max(clustered)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum FitError {
    #[error("not enough observations ({n}) for {p} parameters")]
    TooFewObservations { n: usize, p: usize },
    #[error("the model's columns are collinear (the data cannot separate its effects)")]
    Collinear,
    #[error("no views at all in the data")]
    NoViews,
    #[error("the regression did not converge")]
    NoConvergence,
}

/// κ solving `Σ (y−μ)²/(μ(1+κμ)) = n − p` (method of moments), 0 when the data are not
/// over-dispersed.
fn moment_kappa(y: &[f64], mu: &[f64], df: f64) -> f64 {
    let excess = |k: f64| y.iter().zip(mu).map(|(y, m)| (y - m).powi(2) / (m * (1.0 + k * m))).sum::<f64>() - df;
    if excess(0.0) <= 0.0 {
        return 0.0;
    }
    let mut hi = 1e-3;
    while excess(hi) > 0.0 && hi < 1e6 {
        hi *= 4.0;
    }
    let mut lo = 0.0;
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if excess(mid) > 0.0 { lo = mid } else { hi = mid }
    }
    0.5 * (lo + hi)
}

/// `XᵀWX` (full symmetric) for weights `w`.
fn weighted_gram(x: &Design, w: &[f64]) -> Vec<f64> {
    let p = x.cols;
    let mut g = vec![0.0; p * p];
    for (i, &wi) in w.iter().enumerate() {
        let row = x.row(i);
        for a in 0..p {
            let wa = wi * row[a];
            if wa == 0.0 {
                continue;
            }
            for b in 0..=a {
                g[a * p + b] += wa * row[b];
            }
        }
    }
    for a in 0..p {
        for b in 0..a {
            g[b * p + a] = g[a * p + b];
        }
    }
    g
}

/// Fits `log μᵢ = offsetᵢ + xᵢᵀβ`, `Var yᵢ = μᵢ + κμᵢ²`, by iteratively reweighted least squares,
/// re-estimating κ by moments at every step. The design must not contain all-zero columns; it
/// needs no intercept if its columns span one (e.g. fixed effects).
pub(crate) fn fit_counts(x: &Design, y: &[f64], offset: &[f64]) -> Result<CountFit, FitError> {
    let fit = fit_irls(x, y, offset, None, None, |mu, df, _| VarianceFn { phi: 1.0, kappa: moment_kappa(y, mu, df) })?;
    Ok(fit.fit)
}

/// [`fit_counts`] with a cluster-robust covariance as well, for observations whose noise may be
/// correlated within clusters (consecutive hours of one video), and optionally a zero-mean
/// normal prior on some coefficients (`prior_precision[j]`, 0 for none; on the scale of `XᵀWX`):
/// partial pooling, where a coefficient is known to vary little around what the prior says.
pub(crate) fn fit_counts_clustered(
    x: &Design,
    y: &[f64],
    offset: &[f64],
    clusters: Option<Clusters<'_>>,
    prior_precision: Option<&[f64]>,
) -> Result<CountFit, FitError> {
    let fit = fit_irls(x, y, offset, clusters, prior_precision, |mu, df, _| VarianceFn {
        phi: 1.0,
        kappa: moment_kappa(y, mu, df),
    })?;
    Ok(fit.fit)
}

/// The IRLS loop shared by both fits: `log μᵢ = offsetᵢ + xᵢᵀβ` with the variance function
/// re-estimated by `estimate(μ, residual df, current)` after every step, then the model-based
/// covariance (`(XᵀWX)⁻¹` scaled by the Pearson dispersion, floored at 1) and the HC3 sandwich.
fn fit_irls(
    x: &Design,
    y: &[f64],
    offset: &[f64],
    clusters: Option<Clusters<'_>>,
    prior_precision: Option<&[f64]>,
    estimate: impl Fn(&[f64], f64, VarianceFn) -> VarianceFn,
) -> Result<FlexibleFit, FitError> {
    let n = x.rows();
    let p = x.cols;
    if n < p + 2 {
        return Err(FitError::TooFewObservations { n, p });
    }
    if y.iter().all(|&v| v <= 0.0) {
        return Err(FitError::NoViews);
    }
    let df = (n - p) as f64;
    let gram_of = |w: &[f64]| penalised_gram(x, w, prior_precision);
    let Converged { coef, mu, variance } = irls_steps(x, y, offset, df, &gram_of, estimate)?;
    let w: Vec<f64> = mu.iter().map(|&m| variance.weight(m)).collect();
    let l = cholesky(&gram_of(&w), p).ok_or(FitError::Collinear)?;
    let bread = cholesky_inverse(&l, p);
    let (cov_model, cov_robust, cov_clustered) = covariances(x, y, &mu, variance, &w, &bread, clusters);
    let fit = CountFit { coef, cov_model, cov_robust, cov_clustered, kappa: variance.kappa, df_resid: n - p };
    Ok(FlexibleFit { fit, variance })
}

/// `XᵀWX` plus the prior's precision on its diagonal, if there is a prior.
fn penalised_gram(x: &Design, w: &[f64], prior_precision: Option<&[f64]>) -> Vec<f64> {
    let mut gram = weighted_gram(x, w);
    if let Some(prior) = prior_precision {
        for (j, p) in prior.iter().enumerate().take(x.cols) {
            gram[j * x.cols + j] += p;
        }
    }
    gram
}

/// Where the IRLS steps settled.
struct Converged {
    coef: Vec<f64>,
    mu: Vec<f64>,
    variance: VarianceFn,
}

/// Weighted least-squares steps (at most 200) until the coefficients and the variance function
/// stop moving; `gram_of(w)` is the (penalised) `XᵀWX`.
fn irls_steps(
    x: &Design,
    y: &[f64],
    offset: &[f64],
    df: f64,
    gram_of: &dyn Fn(&[f64]) -> Vec<f64>,
    estimate: impl Fn(&[f64], f64, VarianceFn) -> VarianceFn,
) -> Result<Converged, FitError> {
    let n = x.rows();
    let p = x.cols;
    // Start from log(y + ½), close for counts of this size; the first step is then a weighted
    // least-squares fit of the log counts.
    let mut eta: Vec<f64> = y.iter().map(|&v| (v + 0.5).ln()).collect();
    let mut mu: Vec<f64> = eta.iter().map(|e| e.exp()).collect();
    let mut coef = vec![0.0; p];
    let mut variance = VarianceFn { phi: 1.0, kappa: 0.0 };
    for iteration in 0..200 {
        let w: Vec<f64> = mu.iter().map(|&m| variance.weight(m)).collect();
        let gram = gram_of(&w);
        let mut rhs = vec![0.0; p];
        for i in 0..n {
            let z = if iteration == 0 { eta[i] - offset[i] } else { eta[i] - offset[i] + (y[i] - mu[i]) / mu[i] };
            for (r, xa) in rhs.iter_mut().zip(x.row(i)) {
                *r += w[i] * xa * z;
            }
        }
        let l = cholesky(&gram, p).ok_or(FitError::Collinear)?;
        let target = cholesky_solve(&l, p, &rhs);
        // Halve the step if it would overflow (a guard; from this start IRLS rarely needs it).
        let mut step = 1.0;
        let (new_coef, new_eta, new_mu) = loop {
            let trial: Vec<f64> = coef.iter().zip(&target).map(|(c, t)| c + step * (t - c)).collect();
            let trial_eta: Vec<f64> =
                (0..n).map(|i| offset[i] + x.row(i).iter().zip(&trial).map(|(a, b)| a * b).sum::<f64>()).collect();
            if trial_eta.iter().all(|e| *e < 700.0) || step < 1e-6 {
                let trial_mu = trial_eta.iter().map(|e| e.min(700.0).exp().max(1e-300)).collect::<Vec<_>>();
                break (trial, trial_eta, trial_mu);
            }
            step /= 2.0;
        };
        let change = new_coef.iter().zip(&coef).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let new_variance = estimate(&new_mu, df, variance);
        let variance_change = ((new_variance.phi - variance.phi).abs() / variance.phi)
            .max((new_variance.kappa - variance.kappa).abs() / (variance.kappa + 1e-4));
        coef = new_coef;
        eta = new_eta;
        mu = new_mu;
        variance = new_variance;
        if iteration > 0 && change < 1e-9 && variance_change < 1e-6 {
            return Ok(Converged { coef, mu, variance });
        }
    }
    Err(FitError::NoConvergence)
}

/// A converged fit's covariances from its `bread` (`(XᵀWX)⁻¹`): model-based (scaled by the
/// Pearson dispersion, floored at 1), HC3, and cluster-robust when there are more clusters than
/// columns nested in them.
fn covariances(
    x: &Design,
    y: &[f64],
    mu: &[f64],
    variance: VarianceFn,
    w: &[f64],
    bread: &[f64],
    clusters: Option<Clusters<'_>>,
) -> (Vec<f64>, Vec<f64>, Option<Vec<f64>>) {
    let n = x.rows();
    let p = x.cols;
    let df = (n - p) as f64;
    let mut meat = vec![0.0; p * p];
    let mut cluster_scores: std::collections::BTreeMap<usize, Vec<f64>> = std::collections::BTreeMap::new();
    let mut pearson = 0.0;
    for i in 0..n {
        let row = x.row(i);
        let var = variance.var(mu[i]);
        pearson += (y[i] - mu[i]).powi(2) / var;
        // Leverage hᵢ = wᵢ xᵢᵀ (XᵀWX)⁻¹ xᵢ; score contribution of a log-link observation
        // xᵢ·(yᵢ−μᵢ)·μᵢ/Var.
        let h = w[i] * CountFit::var_of(bread, row);
        let u = (y[i] - mu[i]) * mu[i] / var / (1.0 - h.min(0.99));
        for a in 0..p {
            for b in 0..p {
                meat[a * p + b] += u * u * row[a] * row[b];
            }
        }
        if let Some(clusters) = clusters {
            let score = cluster_scores.entry(clusters.of_each[i]).or_insert_with(|| vec![0.0; p]);
            let raw = (y[i] - mu[i]) * mu[i] / var;
            score.iter_mut().zip(row).for_each(|(s, xa)| *s += raw * xa);
        }
    }
    let dispersion = (pearson / df).max(1.0);
    let cov_model: Vec<f64> = bread.iter().map(|v| v * dispersion).collect();
    let cov_robust = sandwich(bread, &meat, p);
    let groups = cluster_scores.len() as f64;
    let nested = clusters.map_or(1, |c| c.nested_columns.max(1)) as f64;
    let cov_clustered = (groups > nested).then(|| {
        let mut meat = vec![0.0; p * p];
        for score in cluster_scores.values() {
            for a in 0..p {
                for b in 0..p {
                    meat[a * p + b] += score[a] * score[b] * groups / (groups - nested);
                }
            }
        }
        sandwich(bread, &meat, p)
    });
    (cov_model, cov_robust, cov_clustered)
}

/// A variance function `Var y = φ·μ + κ·μ²` whose two coefficients are estimated from the data.
///
/// Unlike [`fit_counts`]' `μ + κμ²`, the linear part is not pinned at Poisson's 1: hourly view
/// increments derived from a platform's counter need not be Poisson (they can be smoother, when
/// the counter is itself an aggregate, or rougher), and pinning `φ = 1` both misweights the
/// hours and overstates or understates every variance. `κμ²` is multiplicative hour-to-hour
/// noise, which dominates busy hours; `φμ` dominates quiet ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VarianceFn {
    pub phi: f64,
    pub kappa: f64,
}

impl VarianceFn {
    /// The smallest `φ` accepted: a variance that vanishes with the mean would give quiet hours
    /// unbounded weight.
    pub const MIN_PHI: f64 = 0.05;

    pub fn var(&self, mu: f64) -> f64 {
        self.phi * mu + self.kappa * mu * mu
    }

    /// The IRLS weight of a log-link observation: `(dμ/dη)² / Var = μ² / Var`.
    pub fn weight(&self, mu: f64) -> f64 {
        mu / (self.phi + self.kappa * mu)
    }

    /// Moment estimates: a least-squares fit of the squared residuals `(y−μ)²`, inflated by
    /// `n/(n−p)` for the fitted parameters, on `μ` and `μ²`, each weighted by the inverse square
    /// of the current variance (squared residuals have variance ∝ Var²). `κ ≥ 0`,
    /// `φ ≥ MIN_PHI`.
    fn estimate(y: &[f64], mu: &[f64], df: f64, current: VarianceFn) -> VarianceFn {
        let n = y.len() as f64;
        let inflate = n / df.max(1.0);
        let (mut s11, mut s12, mut s22, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&yi, &m) in y.iter().zip(mu) {
            let v = current.var(m).max(1e-12);
            let w = 1.0 / (v * v);
            let r = (yi - m).powi(2) * inflate;
            s11 += w * m * m;
            s12 += w * m * m * m;
            s22 += w * m * m * m * m;
            b1 += w * m * r;
            b2 += w * m * m * r;
        }
        let det = s11 * s22 - s12 * s12;
        let (phi, kappa) = if det > 1e-12 * s11 * s22 {
            ((b1 * s22 - b2 * s12) / det, (b2 * s11 - b1 * s12) / det)
        } else {
            (f64::NAN, f64::NAN)
        };
        if phi.is_finite() && kappa.is_finite() && phi >= Self::MIN_PHI && kappa >= 0.0 {
            return VarianceFn { phi, kappa };
        }
        // A bound is active: fix it and solve for the other coefficient alone.
        let kappa_at_min_phi = ((b2 - Self::MIN_PHI * s12) / s22).max(0.0);
        let phi_at_zero_kappa = (b1 / s11).max(Self::MIN_PHI);
        let loss = |f: VarianceFn| {
            y.iter()
                .zip(mu)
                .map(|(&yi, &m)| {
                    let v = current.var(m).max(1e-12);
                    ((yi - m).powi(2) * inflate - f.var(m)).powi(2) / (v * v)
                })
                .sum::<f64>()
        };
        let a = VarianceFn { phi: Self::MIN_PHI, kappa: kappa_at_min_phi };
        let b = VarianceFn { phi: phi_at_zero_kappa, kappa: 0.0 };
        if loss(a) <= loss(b) { a } else { b }
    }
}

/// A fit of [`fit_counts_flexible`]: the estimates, their model-based and HC3 covariances, and
/// the estimated variance function.
#[derive(Debug, Clone)]
pub(crate) struct FlexibleFit {
    pub fit: CountFit,
    pub variance: VarianceFn,
}

/// Fits `log μᵢ = offsetᵢ + xᵢᵀβ` with `Var yᵢ = φμᵢ + κμᵢ²` by IRLS, re-estimating `(φ, κ)` by
/// moments between steps (see [`VarianceFn`]). The model-based covariance is
/// `(XᵀWX)⁻¹` scaled by the Pearson dispersion (floored at 1, so it never narrows what the
/// estimated variance function implies); the robust one is the HC3 sandwich.
/// Which cluster each observation belongs to, for the cluster-robust covariance, and how many of
/// the design's columns are constant within every cluster (fixed effects of groups of whole
/// clusters): each of those absorbs one cluster's worth of information from the scores, so the
/// small-sample factor is `G / (G − nested)` rather than `G / (G − 1)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clusters<'a> {
    pub of_each: &'a [usize],
    pub nested_columns: usize,
}

pub(crate) fn fit_counts_flexible(
    x: &Design,
    y: &[f64],
    offset: &[f64],
    clusters: Option<Clusters<'_>>,
) -> Result<FlexibleFit, FitError> {
    fit_irls(x, y, offset, clusters, None, |mu, df, current| VarianceFn::estimate(y, mu, df, current))
}

/// The expected covariance of [`fit_counts`]' estimates for a planned design, expected means `mu`
/// and a known `kappa`: `(XᵀWX)⁻¹` with `W = μ/(1+κμ)` (used by the power estimate).
pub(crate) fn planned_covariance(x: &Design, mu: &[f64], kappa: f64) -> Result<Vec<f64>, FitError> {
    let p = x.cols;
    let n = x.rows();
    if n < p + 2 {
        return Err(FitError::TooFewObservations { n, p });
    }
    let w: Vec<f64> = mu.iter().map(|m| m / (1.0 + kappa * m)).collect();
    let l = cholesky(&weighted_gram(x, &w), p).ok_or(FitError::Collinear)?;
    Ok(cholesky_inverse(&l, p))
}

/// splitmix64's step: its state advances by this odd constant (2⁶⁴ ÷ the golden ratio).
const SPLITMIX_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's finaliser: a bijective, well-mixing 64-bit hash (the output of `SplitMix` at
/// state `z`, and the simulator's hash of what it draws). Inline: the simulator calls it for
/// every draw, from another crate.
#[inline]
pub fn mix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(SPLITMIX_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: a tiny, well-mixed generator, enough for deterministic Monte Carlo and schedules.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let out = mix64(self.0);
        self.0 = self.0.wrapping_add(SPLITMIX_GAMMA);
        out
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is negligible for the tiny `n` used here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_the_reference_splitmix64() {
        // The reference generator's first outputs from seed 0: the simulator's world (hashed with
        // `mix64`) and every seeded schedule depend on these staying put.
        let mut rng = SplitMix::new(0);
        let firsts = [rng.next_u64(), rng.next_u64(), rng.next_u64()];
        assert_eq!(firsts, [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]);
        assert_eq!(mix64(0), firsts[0]);
        assert_eq!(mix64(0x9e37_79b9_7f4a_7c15), firsts[1]);
    }

    #[test]
    fn normal_distribution_matches_tables() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.959_963_985) - 0.975).abs() < 1e-7);
        assert!((normal_cdf(-1.644_853_627) - 0.05).abs() < 1e-7);
        assert!((normal_cdf(3.0) - 0.998_650_101_968_37).abs() < 1e-7);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-8);
        assert!((normal_quantile(0.8) - 0.841_621_233_572_914).abs() < 1e-8);
        assert!((normal_quantile(0.001) + 3.090_232_306_167_813).abs() < 1e-8);
        assert!((normal_quantile(0.999_9) - 3.719_016_485_455_709).abs() < 1e-7);
        for p in [0.01, 0.2, 0.5, 0.7, 0.99] {
            assert!((normal_cdf(normal_quantile(p)) - p).abs() < 1e-7);
        }
    }

    #[test]
    fn t_quantiles_match_tables() {
        assert!((t_quantile(0.975, 5.0) - 2.570_582).abs() < 2e-3);
        assert!((t_quantile(0.975, 10.0) - 2.228_139).abs() < 2e-4);
        assert!((t_quantile(0.975, 30.0) - 2.042_272).abs() < 1e-5);
        assert!((t_quantile(0.995, 20.0) - 2.845_340).abs() < 1e-3);
        assert!((t_quantile(0.975, 300.0) - 1.967_903).abs() < 1e-5);
    }

    #[test]
    fn empirical_quantiles_are_type_7() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(3.0));
        assert_eq!(quantile_sorted(&v, 0.25), Some(2.0));
        assert_eq!(quantile_sorted(&v, 0.875), Some(7.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }

    #[test]
    fn gls_weighs_correlated_observations_and_prefers_the_true_model() {
        // Three observations of one mean, the first two nearly duplicates (ρ = 0.99):
        // GLS gives the pair about the weight of one observation, so the mean sits near the
        // midpoint of the pair's value and the third, where OLS would weigh the pair twice.
        let v = [1.0, 0.99, 0.0, 0.99, 1.0, 0.0, 0.0, 0.0, 1.0];
        let rows = vec![vec![1.0]; 3];
        let fit = gls(&rows, &[0.0, 0.0, 3.0], &v).unwrap();
        assert!((fit.coef[0] - 1.5).abs() < 0.02, "{:?}", fit.coef);
        assert!((fit.cov[0] - 0.5).abs() < 0.01, "about two independent observations: {:?}", fit.cov);
        // A step in the data is better explained with a step column than without.
        let y = [0.1, -0.1, 0.0, 2.1, 1.9, 2.0];
        let v: Vec<f64> = (0..36).map(|k| if k / 6 == k % 6 { 0.01 } else { 0.0 }).collect();
        let with_step: Vec<Vec<f64>> = (0..6).map(|i| vec![1.0, f64::from(u8::from(i >= 3))]).collect();
        let without: Vec<Vec<f64>> = (0..6).map(|_| vec![1.0]).collect();
        assert!(gls(&with_step, &y, &v).unwrap().log_evidence > gls(&without, &y, &v).unwrap().log_evidence);
    }

    #[test]
    fn cholesky_solves_and_inverts() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let x = cholesky_solve(&l, 3, &[1.0, 2.0, 3.0]);
        for i in 0..3 {
            let bi: f64 = (0..3).map(|j| a[i * 3 + j] * x[j]).sum();
            assert!((bi - [1.0, 2.0, 3.0][i]).abs() < 1e-12);
        }
        let inv = cholesky_inverse(&l, 3);
        for i in 0..3 {
            for j in 0..3 {
                let e: f64 = (0..3).map(|k| a[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((e - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        assert!(cholesky(&[1.0, 1.0, 1.0, 1.0], 2).is_none(), "singular matrices are refused");
    }

    #[test]
    fn poisson_regression_recovers_known_coefficients() {
        // Noise-free expected counts: the fit must return the generating coefficients exactly.
        let mut x = Design::new(2);
        let mut y = Vec::new();
        for i in 0..50 {
            let t = f64::from(i) / 10.0;
            x.push_row(&[1.0, t]);
            y.push((2.0 + 0.3 * t).exp());
        }
        let fit = fit_counts(&x, &y, &vec![0.0; 50]).unwrap();
        assert!((fit.coef[0] - 2.0).abs() < 1e-8 && (fit.coef[1] - 0.3).abs() < 1e-8, "{:?}", fit.coef);
        assert_eq!(fit.kappa, 0.0);

        // Offsets are honoured: doubling the exposure leaves the rate coefficients unchanged.
        let doubled: Vec<f64> = y.iter().map(|v| v * 2.0).collect();
        let fit2 = fit_counts(&x, &doubled, &vec![2f64.ln(); 50]).unwrap();
        assert!((fit2.coef[0] - 2.0).abs() < 1e-8);

        let mut collinear = Design::new(2);
        for i in 0..10 {
            collinear.push_row(&[1.0, 1.0]);
            let _ = i;
        }
        assert_eq!(fit_counts(&collinear, &[3.0; 10], &[0.0; 10]).unwrap_err(), FitError::Collinear);
        assert_eq!(fit_counts(&x, &[0.0; 50], &[0.0; 50]).unwrap_err(), FitError::NoViews);
    }

    #[test]
    fn extra_variance_is_estimated() {
        // Log-normal hourly noise with σ = 0.3 on large counts: κ ≈ e^{0.09} − 1 ≈ 0.094.
        let mut rng = SplitMix::new(5);
        let mut x = Design::new(1);
        let mut y = Vec::new();
        for _ in 0..4000 {
            x.push_row(&[1.0]);
            y.push((1000.0 * (0.3 * rng.normal()).exp()).round());
        }
        let fit = fit_counts(&x, &y, &vec![0.0; 4000]).unwrap();
        assert!((fit.kappa - 0.094).abs() < 0.01, "kappa {}", fit.kappa);
        // The mean of a log-normal with median 1000 is 1000·e^{σ²/2} ≈ 1046.
        assert!((fit.coef[0].exp() - 1046.0).abs() < 10.0, "{}", fit.coef[0].exp());
        let se = fit.conservative_var(&[1.0]).sqrt();
        assert!((se - 0.3 / 4000f64.sqrt()).abs() < 0.001, "se {se}");
    }

    #[test]
    fn flexible_variance_finds_smoother_than_poisson_counts() {
        // Counts whose noise is multiplicative (σ = 0.3) with no Poisson part, at quiet and busy
        // means: the fit must find κ ≈ 0.094 and a φ well below Poisson's 1, where the fixed
        // `μ + κμ²` of `fit_counts` would overstate the quiet hours' variance.
        let mut rng = SplitMix::new(9);
        let mut x = Design::new(2);
        let mut y = Vec::new();
        for i in 0..6000 {
            let busy = i % 2 == 0;
            x.push_row(&[1.0, f64::from(u8::from(busy))]);
            let mean = if busy { 400.0 } else { 20.0 };
            y.push(mean * (0.3 * rng.normal()).exp());
        }
        let flex = fit_counts_flexible(&x, &y, &vec![0.0; 6000], None).unwrap();
        assert!((flex.variance.kappa - 0.094).abs() < 0.012, "{:?}", flex.variance);
        assert!(flex.variance.phi < 0.5, "{:?}", flex.variance);
        // Exact Poisson-like data keep φ near 1.
        let mut x = Design::new(1);
        let mut y = Vec::new();
        for _ in 0..4000 {
            x.push_row(&[1.0]);
            // Poisson(30) by the normal approximation, rounded.
            y.push((30.0 + 30f64.sqrt() * rng.normal()).round().max(0.0));
        }
        let flex = fit_counts_flexible(&x, &y, &vec![0.0; 4000], None).unwrap();
        assert!((flex.variance.phi + 30.0 * flex.variance.kappa - 1.0).abs() < 0.1, "{:?}", flex.variance);
    }

    #[test]
    fn generator_is_deterministic_and_roughly_normal() {
        let mut a = SplitMix::new(7);
        let mut b = SplitMix::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let draws: Vec<f64> = (0..20_000).map(|_| a.normal()).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
    }
}
