# Reference values for a shared-frailty accelerated-failure-time (AFT) model with interval
# censoring, computed in base R by direct numerical integration (stats::integrate), with
# survival::survreg (tau = 0) and lme4::lmer (exact log-normal data) as cross-checks.
#
# Run from the repository root:   Rscript tests/reference/frailty.R
# (the script finds its own folder, so any working directory works).  It writes
#   frailty_input_right.csv, frailty_input_interval.csv, frailty_input_exact.csv,
#   frailty_values.csv, frailty_versions.txt
# next to itself, prints every value with 15 significant digits, and stops if a check fails.
#
# The model --------------------------------------------------------------------------------
# Patient i has episodes j = 1..n_i with covariate row x_ij (intercept, x, group b):
#     log T_ij = x_ij' beta + b_i + sigma * eps_ij,     b_i ~ N(0, tau^2),
# b_i shared by the patient's episodes; eps standard normal ("lognormal") or standard minimum
# extreme value ("weibull": F(z) = 1 - exp(-exp(z))).  Episode (lower, upper] in days, with
# z = (log t - x'beta - b) / sigma:
#     right-censored (upper = inf):   S(z_l)
#     interval (0 < l < u < inf):     F(z_u) - F(z_l)
#     left-censored (l = 0):          F(z_u)
#     exact (l == u = t):             f(z_t) / (sigma * t)   -- density of T in DAYS
# Patient likelihood L_i = integral over b of prod_j P_ij(b) dnorm(b, 0, tau) db, and the
# log-likelihood is sum_i log L_i.  At tau = 0 it is survreg's AFT log-likelihood.
#
# How L_i is computed (NO Gauss-Hermite anywhere in this script) -------------------------
# Substitute b = tau * u:  L_i = int_{-inf}^{inf} exp(g_i(tau u)) dnorm(u) du, with
# g_i(b) = sum_j log P_ij(b).  h(u) = g_i(tau u) + log dnorm(u) is concave (log-concave
# normal / extreme-value laws), so
#   1. h is evaluated on the grid u = -30, -29.9, ..., 30; the best grid point brackets the
#      maximum, which optimize() refines to m (M = h(m));
#   2. s = 1 / sqrt(-h''(m)) (central difference; s <= 1 because h'' <= -1);
#   3. u = m + s v (an exact change of variable over the whole real line) and
#      L_i = exp(M) * s * integrate(exp(h(m + s v) - M), -Inf, Inf, rel.tol = 1e-12).
# The exp(-M) scaling keeps the integrand O(1); the shift/scale only helps integrate() find
# the mass.  The gradient is the posterior mean of dg/dtheta: by integrate() (one call per
# parameter) for the Newton steps and the reported gradient_norm_analytic; by a trapezoid
# rule (u in m +- 10, step s/8; fast) for the gradient that steers BFGS and for the Hessian.
# No reported log-likelihood uses the trapezoid rule.  Independent check at each MLE: a
# trapezoid rule on u in m +- 40 with step s/20 (the integrand is bounded by
# exp(M - (u - m)^2 / 2)), per patient (check_max_abs_integrate_minus_trapezoid).
#
# Parameters: theta = (Intercept, x, group[T.b], log_scale = log sigma, log tau).  Reported
# as estimate rows with term frailty_sd = tau (not log tau).
#
# Datasets (simulated with set.seed, written as CSV, read back; all fits use the CSVs) -----
#   columns patient_id, x, group, lower, upper  (upper = inf for right-censored)
#   right:    120 patients, 1-5 episodes, lognormal truth beta = (4.0, 0.3, -0.4),
#             sigma 0.5, tau 0.6; times to 1 decimal; uniform censoring; exact or
#             right-censored only
#   interval: 150 patients, 1-4 episodes, weibull truth beta = (4.2, -0.2, 0.3), sigma 0.4,
#             tau 0.5; visits 7, 14, 28, 42, 56, 84, 112, 168 each missed with prob 0.2;
#             interval / left- (lower 0) / right-censored
#   exact:    80 patients, 2-4 episodes, lognormal truth as "right", all exact (3 decimals)
# x is per episode (N(0, 1), 2 decimals); group ("a"/"b") is per patient.
#
# What is computed for each dataset and dist (right, interval: lognormal and weibull;
# exact: lognormal) ------------------------------------------------------------------------
#   fixed_parameter, loglik_fixed    log-likelihood at a stated parameter (the truth of the
#                                    dataset: beta, log sigma, tau), for both dists
#   estimate, loglik_max, se         MLE: optim BFGS (analytic gradient, reltol 1e-14) from
#                                    survreg's estimates with tau = 0.3 (log tau), then Newton
#                                    steps on a numerical Hessian of the analytic gradient
#   gradient_norm                    |gradient| at the MLE by central differences (h = 1e-5)
#                                    of the log-likelihood, in theta (log tau) coordinates
#   gradient_norm_analytic           the same with the integrate() gradient
#   survreg_estimate, survreg_loglik survreg(Surv(l, u, type = "interval2") ~ x + group)
#   loglik_tau0                      this script's integral code at tau = 0 at survreg's
#                                    estimates (must equal survreg_loglik)
#   exact only: lmer_* rows          lmer(log(t) ~ x + group + (1 | patient_id), REML = FALSE)
#                                    logLik + Jacobian -sum(log t) must equal loglik_max;
#                                    also a closed-form (multivariate normal) log-likelihood.
# See README.md ("Shared-frailty AFT") for the full list.

suppressPackageStartupMessages({
  library(survival)
  library(lme4)
})

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
out_dir <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()

versions <- c(R.version.string,
              paste("survival", as.character(packageVersion("survival"))),
              paste("lme4", as.character(packageVersion("lme4"))))
cat(versions, sep = "\n")
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
time_start <- proc.time()[["elapsed"]]

fmt <- function(x, digits = 15) {
  out <- ifelse(is.na(x), "NA", ifelse(x > 0, "inf", "-inf"))
  ok <- is.finite(x)
  out[ok] <- trimws(formatC(x[ok], digits = digits, format = "g"))
  out
}
write_table <- function(df, file) {
  write.csv(df, file.path(out_dir, file), row.names = FALSE, quote = FALSE, na = "")
}
fmt_time <- function(x, decimals) {
  out <- rep("inf", length(x))
  out[is.finite(x)] <- sprintf(paste0("%.", decimals, "f"), x[is.finite(x)])
  out
}

# =========================================================================================
# 1. Simulate the three datasets
# =========================================================================================
truth <- list(
  right    = list(dist = "lognormal", beta = c(4.0, 0.3, -0.4), sigma = 0.5, tau = 0.6),
  interval = list(dist = "weibull",   beta = c(4.2, -0.2, 0.3), sigma = 0.4, tau = 0.5),
  exact    = list(dist = "lognormal", beta = c(4.0, 0.3, -0.4), sigma = 0.5, tau = 0.6))
seeds <- c(right = 8101, interval = 8102, exact = 8103)

# Patients with a random number of episodes; x per episode, group per patient.  Returns the
# episode table and the true event times.
simulate_times <- function(n_patients, n_range, tr) {
  n_ep <- sample(n_range, n_patients, replace = TRUE)
  pid <- rep(seq_len(n_patients), n_ep)
  group <- sample(c("a", "b"), n_patients, replace = TRUE)[pid]
  x <- round(rnorm(length(pid)), 2)
  b <- rnorm(n_patients, 0, tr$tau)[pid]
  eps <- if (tr$dist == "lognormal") rnorm(length(pid)) else log(rexp(length(pid)))
  lp <- tr$beta[1] + tr$beta[2] * x + tr$beta[3] * (group == "b")
  list(d = data.frame(patient_id = pid, x = x, group = group, stringsAsFactors = FALSE),
       t = exp(lp + b + tr$sigma * eps))
}

# Dataset right: exact time (1 decimal) or right-censored at an independent uniform time.
set.seed(seeds[["right"]])
sim <- simulate_times(120, 1:5, truth$right)
cens <- runif(length(sim$t), 0, 220)
t_obs <- pmax(round(sim$t, 1), 0.1)
c_obs <- pmax(round(cens, 1), 0.1)
event <- sim$t <= cens
data_right <- cbind(sim$d, lower = ifelse(event, t_obs, c_obs),
                    upper = ifelse(event, t_obs, Inf))
# a censoring time that rounds to the event time would be ambiguous; not the case here
stopifnot(all(data_right$lower > 0))

# Dataset interval: visit schedule, each visit missed with probability 0.2.
set.seed(seeds[["interval"]])
sim <- simulate_times(150, 1:4, truth$interval)
schedule <- c(7, 14, 28, 42, 56, 84, 112, 168)
lower <- upper <- numeric(length(sim$t))
for (k in seq_along(sim$t)) {
  visits <- schedule[runif(length(schedule)) > 0.2]
  stopifnot(length(visits) > 0)                  # every episode has at least one visit
  lower[k] <- max(c(0, visits[visits < sim$t[k]]))
  after <- visits[visits >= sim$t[k]]
  upper[k] <- if (length(after)) min(after) else Inf
}
data_interval <- cbind(sim$d, lower = lower, upper = upper)

# Dataset exact: all exact, 3 decimals.
set.seed(seeds[["exact"]])
sim <- simulate_times(80, 2:4, truth$exact)
t_obs <- round(sim$t, 3)
stopifnot(all(t_obs > 0))
data_exact <- cbind(sim$d, lower = t_obs, upper = t_obs)

write_input <- function(d, file, decimals) {
  write_table(data.frame(patient_id = d$patient_id, x = sprintf("%.2f", d$x),
                         group = d$group, lower = fmt_time(d$lower, decimals),
                         upper = fmt_time(d$upper, decimals)), file)
}
write_input(data_right, "frailty_input_right.csv", 1)
write_input(data_interval, "frailty_input_interval.csv", 0)
write_input(data_exact, "frailty_input_exact.csv", 3)

# =========================================================================================
# 2. Read the CSVs back and set up each dataset
# =========================================================================================
read_input <- function(file) {
  d <- read.csv(file.path(out_dir, file),
                colClasses = c(patient_id = "integer", x = "numeric", group = "character",
                               lower = "character", upper = "character"))
  to_num <- function(s) ifelse(s == "inf", Inf, suppressWarnings(as.numeric(s)))
  d$lower <- to_num(d$lower)
  d$upper <- to_num(d$upper)
  stopifnot(!anyNA(d$lower), !anyNA(d$upper), all(d$lower <= d$upper), all(d$lower >= 0),
            !any(d$lower == 0 & is.infinite(d$upper)), all(d$upper > 0))
  d$group <- factor(d$group, levels = c("a", "b"))
  d
}

# Episode types: E exact, R right-censored, L left-censored, I interval.
prepare <- function(d) {
  X <- model.matrix(~ x + group, d)
  colnames(X) <- c("Intercept", "x", "group[T.b]")
  type <- ifelse(d$lower == d$upper, "E",
          ifelse(is.infinite(d$upper), "R", ifelse(d$lower == 0, "L", "I")))
  loglo <- ifelse(d$lower > 0, log(d$lower), NA)
  logup <- ifelse(is.finite(d$upper), log(d$upper), NA)
  rows <- split(seq_len(nrow(d)), d$patient_id)
  patients <- lapply(rows, function(r) {
    list(X = X[r, , drop = FALSE], type = type[r], loglo = loglo[r], logup = logup[r],
         idx = lapply(c(E = "E", R = "R", L = "L", I = "I"), function(k) which(type[r] == k)))
  })
  list(d = d, X = X, type = type, patients = patients)
}

datasets <- list(right = prepare(read_input("frailty_input_right.csv")),
                 interval = prepare(read_input("frailty_input_interval.csv")),
                 exact = prepare(read_input("frailty_input_exact.csv")))
stopifnot(all(datasets$right$type %in% c("E", "R")), all(datasets$exact$type == "E"))

describe <- function(name) {
  ds <- datasets[[name]]
  n_ep <- table(ds$d$patient_id)
  counts <- c(n_patients = length(n_ep), n_episodes = nrow(ds$d),
              n_exact = sum(ds$type == "E"), n_right = sum(ds$type == "R"),
              n_left = sum(ds$type == "L"), n_interval = sum(ds$type == "I"),
              min_episodes = min(n_ep), max_episodes = max(n_ep),
              n_group_b_patients = sum(tapply(ds$d$group == "b", ds$d$patient_id, any)),
              seed = seeds[[name]])
  cat(sprintf("%s: %s\n", name, paste(names(counts), counts, sep = " = ", collapse = ", ")))
  counts
}
data_counts <- lapply(setNames(names(datasets), names(datasets)), describe)

# =========================================================================================
# 3. The likelihood
# =========================================================================================
# Standard error laws of log T: log cdf, log survival, log density, and the derivatives
# d log f / dz, d log S / dz = -f/S, d log F / dz = f/F (closed forms for the extreme-value
# law, so that nothing cancels in the tails).
dist_funs <- list(
  lognormal = list(logF = function(z) pnorm(z, log.p = TRUE),
                   logS = function(z) pnorm(z, lower.tail = FALSE, log.p = TRUE),
                   logf = function(z) dnorm(z, log = TRUE),
                   dlogf = function(z) -z,
                   dlogS = function(z) -exp(dnorm(z, log = TRUE) -
                                              pnorm(z, lower.tail = FALSE, log.p = TRUE)),
                   dlogF = function(z) exp(dnorm(z, log = TRUE) - pnorm(z, log.p = TRUE))),
  weibull = list(logF = function(z) ifelse(z < -20, z - exp(z) / 2,    # log(1 - e^-w), w = e^z
                                           log(-expm1(-exp(z)))),
                 logS = function(z) -exp(z),
                 logf = function(z) z - exp(z),
                 dlogf = function(z) 1 - exp(z),
                 dlogS = function(z) -exp(z),
                 dlogF = function(z) {                                # w / (e^w - 1)
                   w <- exp(z)
                   ifelse(w > 700, 0, ifelse(w < 1e-10, 1 - w / 2, w / expm1(w)))
                 }))

log1mexp <- function(a) ifelse(a > -log(2), log(-expm1(a)), log1p(-exp(a)))   # log(1 - e^a)

# Episode log-probabilities for one patient.  eta: n_i x K matrix of x'beta + b (one column
# per quadrature point).  Returns the n_i x K matrix logp and, with deriv = TRUE, also
# d logp / d eta and d logp / d log sigma.
episode_logp <- function(P, eta, sigma, D, deriv = FALSE) {
  n <- nrow(eta)
  lp <- de <- ds <- matrix(0, n, ncol(eta))
  r <- P$idx$E                                       # exact: f(z) / (sigma t)
  if (length(r)) {
    z <- (P$loglo[r] - eta[r, , drop = FALSE]) / sigma
    lp[r, ] <- D$logf(z) - log(sigma) - P$loglo[r]
    if (deriv) { dz <- D$dlogf(z); de[r, ] <- -dz / sigma; ds[r, ] <- -z * dz - 1 }
  }
  r <- P$idx$R                                       # right: S(z_l)
  if (length(r)) {
    z <- (P$loglo[r] - eta[r, , drop = FALSE]) / sigma
    lp[r, ] <- D$logS(z)
    if (deriv) { dz <- D$dlogS(z); de[r, ] <- -dz / sigma; ds[r, ] <- -z * dz }
  }
  r <- P$idx$L                                       # left: F(z_u)
  if (length(r)) {
    z <- (P$logup[r] - eta[r, , drop = FALSE]) / sigma
    lp[r, ] <- D$logF(z)
    if (deriv) { dz <- D$dlogF(z); de[r, ] <- -dz / sigma; ds[r, ] <- -z * dz }
  }
  r <- P$idx$I                                       # interval: F(z_u) - F(z_l)
  if (length(r)) {
    zl <- (P$loglo[r] - eta[r, , drop = FALSE]) / sigma
    zu <- (P$logup[r] - eta[r, , drop = FALSE]) / sigma
    lFu <- D$logF(zu); lFl <- D$logF(zl); lSu <- D$logS(zu); lSl <- D$logS(zl)
    a <- lFl - lFu                                   # log F(zl)/F(zu) < 0
    c <- lSu - lSl                                   # log S(zu)/S(zl) < 0
    # use the side with less cancellation
    logd <- ifelse(a < c, lFu + log1mexp(a), lSl + log1mexp(c))
    # both survivals underflow to 0 (z_l > 709, weibull): only far out in the tail of the
    # integral, where the true probability is below the double range
    logd[is.na(logd)] <- -Inf
    lp[r, ] <- logd
    if (deriv) {
      dzu <- exp(D$logf(zu) - logd); dzl <- -exp(D$logf(zl) - logd)
      de[r, ] <- -(dzu + dzl) / sigma; ds[r, ] <- -(zu * dzu + zl * dzl)
    }
  }
  if (deriv) list(lp = lp, de = de, ds = ds) else lp
}

REL_TOL <- 1e-12
integrate_count <- new.env()
integrate_count$fallback <- 0
# integrate() with rel.tol 1e-12; if QUADPACK reports a roundoff problem, retry at 1e-10
# (counted and reported; it never happened in the recorded run).
integ <- function(f, abs.tol = 0) {
  res <- tryCatch(integrate(f, -Inf, Inf, rel.tol = REL_TOL, abs.tol = abs.tol,
                            subdivisions = 2000L),
                  error = function(e) NULL)
  if (is.null(res)) {
    integrate_count$fallback <- integrate_count$fallback + 1
    res <- integrate(f, -Inf, Inf, rel.tol = 1e-10, abs.tol = abs.tol, subdivisions = 2000L)
  }
  res$value
}

U_GRID <- seq(-30, 30, by = 0.1)

# log L_i (and, with grad = TRUE, its gradient in theta) for one patient.
#   method = "integrate":  integrate() as described in the header (the reference values);
#   method = "trapezoid":  trapezoid rule on u in m +- trap[2] with step s / trap[1].  Used
#                          (a) with trap = c(8, 10) for the gradient that steers optim and
#                          for the Newton Hessian (fast), and (b) with trap = c(20, 40) as the
#                          independent check of integrate() at the MLE.  The integrand is
#                          bounded by exp(M - (u - m)^2 / 2), so u in m +- 10 misses < 1e-21.
patient_loglik <- function(P, theta, D, grad = FALSE, method = "integrate", trap = c(8, 10)) {
  p <- ncol(P$X)
  beta <- theta[1:p]; sigma <- exp(theta[p + 1]); tau <- exp(theta[p + 2])
  lin <- drop(P$X %*% beta)
  h <- function(u) {
    colSums(episode_logp(P, outer(lin, tau * u, "+"), sigma, D)) + dnorm(u, log = TRUE)
  }
  # 1. maximum of the (concave) log integrand: grid, then optimize() between the neighbours
  hg <- h(U_GRID)
  k <- which.max(hg)
  opt <- optimize(h, U_GRID[c(max(k - 1, 1), min(k + 1, length(U_GRID)))], maximum = TRUE,
                  tol = 1e-10)
  m <- if (opt$objective > hg[k]) opt$maximum else U_GRID[k]
  M <- max(opt$objective, hg[k])
  # 2. curvature scale
  dd <- 1e-3
  h2 <- (h(m + dd) - 2 * M + h(m - dd)) / dd^2
  s <- 1 / sqrt(max(-h2, 1))
  # weights exp(h - M) and dg/dtheta (p + 2 rows) at the points u
  weights_and_scores <- function(u) {
    ep <- episode_logp(P, outer(lin, tau * u, "+"), sigma, D, deriv = TRUE)
    w <- exp(colSums(ep$lp) + dnorm(u, log = TRUE) - M)
    dg <- rbind(crossprod(P$X, ep$de), colSums(ep$ds), tau * u * colSums(ep$de))
    dg[, w == 0] <- 0                                # zero weight: far tail
    stopifnot(all(is.finite(dg)))
    list(w = w, dg = dg)
  }
  out <- list()
  if (method == "integrate") {
    # 3. integrate over the whole real line, u = m + s v
    I0 <- integ(function(v) exp(h(m + s * v) - M))
    out$loglik <- M + log(s) + log(I0)
    if (grad) {
      # d log L_i / d theta = E[dg/dtheta | data], each component by integrate()
      out$grad <- vapply(seq_len(p + 2), function(j) {
        if (j == p + 2 && tau == 0) return(0)
        integ(function(v) {
          ws <- weights_and_scores(m + s * v)
          ws$w * ws$dg[j, ]
        }, abs.tol = 1e-13 * I0) / I0
      }, 0)
    }
  } else {
    step <- s / trap[1]
    u <- m + step * seq(-ceiling(trap[2] / step), ceiling(trap[2] / step))
    if (grad) {
      ws <- weights_and_scores(u)
      out$loglik <- M + log(step * sum(ws$w))
      out$grad <- drop(ws$dg %*% ws$w) / sum(ws$w)
    } else {
      out$loglik <- M + log(step * sum(exp(h(u) - M)))
    }
  }
  out
}

patient_logliks <- function(ds, theta, dist, method = "integrate", trap = c(8, 10)) {
  D <- dist_funs[[dist]]
  vapply(ds$patients, function(P) patient_loglik(P, theta, D, method = method,
                                                 trap = trap)$loglik, 0)
}
loglik <- function(ds, theta, dist, method = "integrate", trap = c(8, 10)) {
  sum(patient_logliks(ds, theta, dist, method, trap))
}
loglik_grad <- function(ds, theta, dist, method = "integrate") {
  D <- dist_funs[[dist]]
  res <- lapply(ds$patients, function(P) patient_loglik(P, theta, D, grad = TRUE,
                                                        method = method))
  list(loglik = sum(vapply(res, `[[`, 0, "loglik")),
       grad = Reduce(`+`, lapply(res, `[[`, "grad")))
}

# =========================================================================================
# 4. Fitting
# =========================================================================================
TERMS <- c("Intercept", "x", "group[T.b]", "log_scale", "log_frailty_sd")

# survreg (tau = 0): lower = 0 -> NA (left-censored), upper = inf -> NA (right-censored)
fit_survreg <- function(ds, dist) {
  d <- ds$d
  l <- ifelse(d$lower == 0, NA, d$lower)
  u <- ifelse(is.infinite(d$upper), NA, d$upper)
  fit <- survreg(Surv(l, u, type = "interval2") ~ x + group, data = d, dist = dist,
                 control = survreg.control(rel.tolerance = 1e-12, maxiter = 200))
  stopifnot(fit$iter < 200)
  list(fit = fit, par = c(unname(coef(fit)), log(fit$scale)), loglik = fit$loglik[2])
}

# Hessian of the log-likelihood in theta: central differences (step 1e-4) of the trapezoid
# gradient, symmetrised.  Used for the Newton steps and the standard errors only.
hessian <- function(ds, theta, dist, step = 1e-4) {
  k <- length(theta)
  H <- sapply(seq_len(k), function(j) {
    e <- replace(numeric(k), j, step)
    (loglik_grad(ds, theta + e, dist, "trapezoid")$grad -
       loglik_grad(ds, theta - e, dist, "trapezoid")$grad) / (2 * step)
  })
  (H + t(H)) / 2
}

# Maximum likelihood:
#   1. optim BFGS on the integrate() log-likelihood, reltol 1e-14, with the (fast) trapezoid
#      gradient, from survreg's estimates and tau = 0.3;
#   2. Newton steps with the integrate() gradient and the trapezoid Hessian until the step is
#      below 1e-10 (a step is kept only if it does not lower the log-likelihood by > 1e-10);
#   3. at the result: the integrate() log-likelihood and gradient, a central-difference
#      gradient of the integrate() log-likelihood (h = 1e-5), the trapezoid check and the
#      Hessian (standard errors).
fit_frailty <- function(ds, dist, start) {
  t0 <- proc.time()[["elapsed"]]
  # a trial point where the integral cannot be evaluated (absurd parameters in a line
  # search) gets fn = Inf, which makes BFGS shorten the step; counted and printed
  n_bad <- 0
  fn <- function(th) {
    v <- tryCatch(-loglik(ds, th, dist), error = function(e) Inf)
    if (!is.finite(v)) { n_bad <<- n_bad + 1; v <- Inf }
    v
  }
  gr <- function(th) -loglik_grad(ds, th, dist, "trapezoid")$grad
  # fnscale = |loglik(start)| keeps BFGS's first steps (identity metric) of a sensible size
  o <- optim(start, fn, gr, method = "BFGS",
             control = list(reltol = 1e-14, maxit = 1000, fnscale = abs(fn(start))))
  stopifnot(o$convergence == 0)
  theta <- o$par
  ll <- -o$value
  n_newton <- 0
  H <- hessian(ds, theta, dist)
  for (it in 1:20) {
    g <- loglik_grad(ds, theta, dist)$grad
    delta <- -solve(H, g)
    if (max(abs(delta)) < 1e-10) break
    ll_new <- loglik(ds, theta + delta, dist)
    if (ll_new < ll - 1e-10) { cat("  Newton step rejected\n"); break }
    theta <- theta + delta; ll <- ll_new; n_newton <- n_newton + 1
  }
  lg <- loglik_grad(ds, theta, dist)
  num_grad <- sapply(seq_along(theta), function(j) {
    e <- replace(numeric(length(theta)), j, 1e-5)
    (loglik(ds, theta + e, dist) - loglik(ds, theta - e, dist)) / 2e-5
  })
  H <- hessian(ds, theta, dist)
  stopifnot(all(eigen(H, symmetric = TRUE)$values < 0))    # a strict local maximum
  trap_diff <- patient_logliks(ds, theta, dist) -
    patient_logliks(ds, theta, dist, "trapezoid", c(20, 40))
  list(theta = setNames(theta, TERMS), loglik = lg$loglik,
       grad = lg$grad, num_grad = num_grad,
       se = setNames(sqrt(diag(solve(-H))), TERMS),
       optim_loglik = -o$value, optim_counts = o$counts, n_newton = n_newton, n_bad = n_bad,
       last_step = max(abs(delta)), trap_diff = max(abs(trap_diff)),
       seconds = proc.time()[["elapsed"]] - t0)
}

# =========================================================================================
# 5. Run everything
# =========================================================================================
rows <- list()
add <- function(dataset, dist, quantity, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = dataset, dist = dist, quantity = quantity,
                                          term = term, value = value,
                                          stringsAsFactors = FALSE)
  cat(sprintf("%-9s %-9s %-40s %-15s %s\n", dataset, dist, quantity, term,
              format(value, digits = 15)))
}

for (name in names(datasets)) {
  counts <- data_counts[[name]]
  for (q in names(counts)) add(name, "", q, "", counts[[q]])
}

results <- list()
for (name in names(datasets)) {
  ds <- datasets[[name]]
  tr <- truth[[name]]
  dists <- if (name == "exact") "lognormal" else c("lognormal", "weibull")
  fixed <- c(tr$beta, log(tr$sigma), log(tr$tau))
  for (dist in dists) {
    cat(sprintf("\n--- %s / %s ---\n", name, dist))
    # (a) log-likelihood at the stated fixed parameter (the truth of the dataset)
    ll_fixed <- loglik(ds, fixed, dist)
    for (j in 1:4) add(name, dist, "fixed_parameter", TERMS[j], fixed[j])
    add(name, dist, "fixed_parameter", "frailty_sd", tr$tau)
    add(name, dist, "loglik_fixed", "", ll_fixed)

    # (b) tau = 0: survreg, and this script's integral code at tau = 0
    sr <- fit_survreg(ds, dist)
    ll_tau0 <- loglik(ds, c(sr$par, -Inf), dist)
    ll_tau_small <- loglik(ds, c(sr$par, log(1e-6)), dist)
    stopifnot(abs(ll_tau0 - sr$loglik) < 1e-8)

    # (c) maximum likelihood
    fit <- fit_frailty(ds, dist, c(sr$par, log(0.3)))
    cat(sprintf(paste("  fit: %.1f s, optim counts fn %d gr %d (%d trial points not",
                      "evaluable), optim loglik %s, %d Newton steps\n"),
                fit$seconds, fit$optim_counts[1], fit$optim_counts[2], fit$n_bad,
                format(fit$optim_loglik, digits = 15), fit$n_newton))
    for (j in 1:4) add(name, dist, "estimate", TERMS[j], fit$theta[[j]])
    add(name, dist, "estimate", "frailty_sd", exp(fit$theta[[5]]))
    add(name, dist, "loglik_max", "", fit$loglik)
    for (j in 1:5) add(name, dist, "se", TERMS[j], fit$se[[j]])
    add(name, dist, "se", "frailty_sd", exp(fit$theta[[5]]) * fit$se[[5]])
    for (j in 1:4) add(name, dist, "survreg_estimate", TERMS[j], sr$par[j])
    add(name, dist, "survreg_loglik", "", sr$loglik)
    add(name, dist, "loglik_tau0", "", ll_tau0)
    add(name, dist, "gradient_norm", "", sqrt(sum(fit$num_grad^2)))
    add(name, dist, "gradient_norm_analytic", "", sqrt(sum(fit$grad^2)))
    add(name, dist, "check_loglik_tau0_minus_survreg", "", ll_tau0 - sr$loglik)
    add(name, dist, "check_loglik_tau_1e-6_minus_tau0", "", ll_tau_small - ll_tau0)
    add(name, dist, "check_max_abs_integrate_minus_trapezoid", "", fit$trap_diff)
    add(name, dist, "check_last_newton_step", "", fit$last_step)
    stopifnot(fit$loglik >= ll_fixed, fit$loglik >= ll_tau0,
              sqrt(sum(fit$num_grad^2)) < 1e-5, sqrt(sum(fit$grad^2)) < 1e-7,
              fit$trap_diff < 1e-10)
    results[[paste(name, dist)]] <- fit

    # (d) exact log-normal data: lmer (ML) and the closed-form multivariate normal likelihood
    if (name == "exact") {
      d <- ds$d
      d$patient_id <- factor(d$patient_id)
      d$log_t <- log(d$lower)
      lm_fit <- lmer(log_t ~ x + group + (1 | patient_id), data = d, REML = FALSE,
                     control = lmerControl(optimizer = "bobyqa",
                                           optCtrl = list(rhoend = 1e-12, maxfun = 1e5)))
      jac <- -sum(d$log_t)
      lmer_ll <- as.numeric(logLik(lm_fit))
      lmer_par <- c(unname(fixef(lm_fit)), log(sigma(lm_fit)),
                    attr(VarCorr(lm_fit)$patient_id, "stddev")[[1]])
      # log-likelihood of T in days: MVN density of log T (covariance sigma^2 I + tau^2 J)
      # plus the Jacobian -sum(log t)
      mvn_loglik <- function(theta) {
        beta <- theta[1:3]; s2 <- exp(2 * theta[4]); t2 <- exp(2 * theta[5])
        sum(vapply(split(seq_len(nrow(d)), d$patient_id), function(r) {
          y <- d$log_t[r] - drop(ds$X[r, , drop = FALSE] %*% beta)
          V <- diag(s2, length(r)) + t2
          R <- chol(V)
          z <- backsolve(R, y, transpose = TRUE)
          -length(r) / 2 * log(2 * pi) - sum(log(diag(R))) - sum(z^2) / 2
        }, 0)) + jac
      }
      add(name, dist, "lmer_loglik", "", lmer_ll)
      add(name, dist, "jacobian", "", jac)
      add(name, dist, "lmer_loglik_plus_jacobian", "", lmer_ll + jac)
      for (j in 1:4) add(name, dist, "lmer_estimate", TERMS[j], lmer_par[j])
      add(name, dist, "lmer_estimate", "frailty_sd", lmer_par[5])
      add(name, dist, "loglik_fixed_closed_form", "", mvn_loglik(fixed))
      add(name, dist, "loglik_max_closed_form", "", mvn_loglik(fit$theta))
      est <- c(fit$theta[1:4], exp(fit$theta[5]))
      add(name, dist, "check_loglik_max_minus_lmer", "", fit$loglik - (lmer_ll + jac))
      add(name, dist, "check_max_abs_estimate_minus_lmer", "", max(abs(est - lmer_par)))
      add(name, dist, "check_loglik_fixed_minus_closed_form", "", ll_fixed - mvn_loglik(fixed))
      add(name, dist, "check_loglik_max_minus_closed_form", "",
          fit$loglik - mvn_loglik(fit$theta))
      stopifnot(abs(fit$loglik - (lmer_ll + jac)) < 1e-6,
                abs(ll_fixed - mvn_loglik(fixed)) < 1e-9,
                abs(fit$loglik - mvn_loglik(fit$theta)) < 1e-9)
    }
  }
}
add("meta", "", "integrate_fallbacks", "", integrate_count$fallback)

values <- do.call(rbind, rows)
values$value <- fmt(values$value)
write_table(values, "frailty_values.csv")
writeLines(c(versions, paste(names(seeds), seeds, collapse = " | "),
             "statmod not used (no Gauss-Hermite quadrature in this script)"),
           file.path(out_dir, "frailty_versions.txt"))
cat(sprintf("\nTotal time: %.0f s\n", proc.time()[["elapsed"]] - time_start))
