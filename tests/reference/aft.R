# Reference values for interval-censored accelerated-failure-time (AFT) regression,
# computed with R's survival::survreg.
#
# Run from the repository root:   Rscript tests/reference/aft.R
# (the script finds its own folder, so any working directory works).
#
# Interval convention ----------------------------------------------------------------------
# Every observation is (lower, upper] in days: the event happened after `lower` and at or
# before `upper`.  upper = inf (in the CSVs): right-censored; lower = 0: left-censored;
# lower == upper: exact.
#
# R's documentation agrees.  ?Surv (survival 3.5-3), argument `time2`:
#   "ending time of the interval for interval censored or counting process data only.
#    Intervals are assumed to be open on the left and closed on the right, '(start, end]'."
# and, for type = "interval2": "(-infinity, t2) for left censored, (t1, infinity) for right
# censored, (t,t) for exact and (t1, t2) for an interval ... Infinite values can be
# represented either by actual infinity (Inf) or NA."
# For survreg (continuous distributions) open vs closed ends make no difference.
#
# How the rows are passed to R ------------------------------------------------------------
# Surv(l, u, type = "interval2") with
#   u = NA  for right-censored rows (upper = inf), and
#   l = NA  for left-censored rows (lower = 0).
# lower = 0 cannot be passed as 0: survreg log-transforms the times for the weibull,
# lognormal and loglogistic distributions, log(0) = -Inf, and survreg stops with
# "Invalid survival times for this distribution" (checked below).  l = NA makes the row
# R's left-censored type (status 2), whose likelihood term is F(u) = P(T <= u), which is
# exactly P(0 < T <= u) for a positive T.
#
# Likelihood terms (T on the day scale, z = (log t - x'b) / scale, F0/f0 the standard
# extreme-value / normal / logistic cdf/density):
#   interval (l, u]:  F0(z_u) - F0(z_l);   left (0, u]:  F0(z_u);   right (l, inf):  1 - F0(z_l)
#   exact t:          f0(z_t) / (scale * t)   -- the density of T in days: survreg adds the
#                     Jacobian -log(t) for exact rows ("logcorrect" in survreg's code).
# The script recomputes the log-likelihood from these formulas and checks it against
# fit$loglik[2] (summary: loglik_check).
#
# Outputs (in this folder) ---------------------------------------------------------------
#   aft_input_a.csv    lower, upper, nerve, age, diabetes       (300 rows, Weibull AFT truth)
#   aft_input_b.csv    lower, upper, bmi, retreatment           (150 rows, log-normal truth)
#   aft_profiles.csv   dataset, profile, nerve, age, diabetes, bmi, retreatment (3 each)
#   aft_values.csv     dataset, dist, quantity, term, value  (long format, 15 sig. digits)
# Models:  a:  Surv(l, u, type = "interval2") ~ nerve + age + diabetes
#          b:  Surv(l, u, type = "interval2") ~ bmi + retreatment
# nerve is character; R turns it into a factor with alphabetical levels, so the reference
# level is "greater_occipital" and the terms are nerveinfrapatellar_saphenous and
# nerveintercostal.
#
# quantity (term):
#   coef (R's coefficient name)           se (coefficient name or "Log(scale)")
#   vcov ("row|col", over the coefficients and "Log(scale)")  -- inverse observed information
#   log_scale (Log(scale))   scale ()   loglik ()   loglik_null () (intercept-only model)
#   n_iter ()  (survreg's Newton-Raphson iterations; informative only)
#   n (), df () (number of coefficients + 1 for the scale)
#   lp ("profile<k>")                                   x'b for the profile
#   quantile, quantile_se ("profile<k>:p<p>")           predict(type = "quantile", se.fit = TRUE):
#                                                       time quantile in days, delta-method se
#   uquantile, uquantile_se ("profile<k>:p<p>")         the same on the log-time scale
#                                                       (quantile_se = quantile * uquantile_se)
# Fits use survreg.control(rel.tolerance = 1e-12, maxiter = 200).

suppressPackageStartupMessages(library(survival))

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
out_dir <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()

cat(R.version.string, "\n")
cat("survival", as.character(packageVersion("survival")), "\n")

fmt <- function(x, digits = 15) {
  out <- ifelse(is.na(x), "NA", ifelse(x > 0, "inf", "-inf"))
  ok <- is.finite(x)
  out[ok] <- trimws(formatC(x[ok], digits = digits, format = "g"))
  out
}
fmt_time <- function(x) {
  stopifnot(all(x[is.finite(x)] == round(x[is.finite(x)])))
  out <- rep("inf", length(x))
  out[is.finite(x)] <- sprintf("%.0f", x[is.finite(x)])
  out
}
write_table <- function(df, file) {
  write.csv(df, file.path(out_dir, file), row.names = FALSE, quote = FALSE, na = "")
}

# Observe continuous event times through a visit schedule: (last visit before T, first
# visit at or after T]; 0 if no visit before T, Inf if no visit at or after T.
observe <- function(t, schedule, jitter, p_miss) {
  n <- length(t)
  lower <- upper <- numeric(n)
  for (i in seq_len(n)) {
    visits <- schedule[-1] + c(0, sample(-jitter:jitter, length(schedule) - 2, replace = TRUE))
    last <- sample(seq_along(visits), 1, prob = seq_along(visits)^1.5)   # dropout
    visits <- visits[seq_len(last)]
    visits <- visits[runif(length(visits)) > p_miss]
    if (!length(visits)) visits <- schedule[2]
    after <- visits[visits >= t[i]]
    lower[i] <- max(c(0, visits[visits < t[i]]))
    upper[i] <- if (length(after)) min(after) else Inf
  }
  data.frame(lower = lower, upper = upper)
}

# ---------------------------------------------------------------------------------------
# Dataset a: Weibull AFT, 300 rows.
# ---------------------------------------------------------------------------------------
set.seed(7301)
n_a <- 300
nerve_levels <- c("greater_occipital", "infrapatellar_saphenous", "intercostal")
a_cov <- data.frame(
  nerve = sample(nerve_levels, n_a, replace = TRUE, prob = c(0.45, 0.30, 0.25)),
  age = round(pmin(pmax(rnorm(n_a, 55, 13), 20), 90)),
  diabetes = rbinom(n_a, 1, 0.25),
  stringsAsFactors = FALSE)
lp_a <- 4.1 + c(0, 0.35, -0.25)[match(a_cov$nerve, nerve_levels)] -
  0.012 * a_cov$age + 0.30 * a_cov$diabetes
t_a <- exp(lp_a + 0.6 * log(rexp(n_a)))          # Weibull: log T = lp + 0.6 * EV(min)
obs_a <- observe(t_a, c(0, 7, 14, 30, 45, 60, 90, 120, 180, 270, 365), jitter = 3,
                 p_miss = 0.2)
data_a <- cbind(obs_a, a_cov)

# ---------------------------------------------------------------------------------------
# Dataset b: log-normal AFT, 150 rows, some exact.
# ---------------------------------------------------------------------------------------
set.seed(7302)
n_b <- 150
b_cov <- data.frame(bmi = round(rnorm(n_b, 27, 4.5), 1),
                    retreatment = rbinom(n_b, 1, 0.35))
lp_b <- 3.0 + 0.03 * b_cov$bmi - 0.45 * b_cov$retreatment
t_b <- exp(lp_b + 0.8 * rnorm(n_b))
obs_b <- observe(t_b, c(0, 14, 30, 60, 90, 180), jitter = 2, p_miss = 0.15)
exact_b <- sort(sample(n_b, 15))                   # day of the event known exactly
obs_b$lower[exact_b] <- obs_b$upper[exact_b] <- pmax(1, ceiling(t_b[exact_b]))
data_b <- cbind(obs_b, b_cov)

describe <- function(d, name) {
  cat(sprintf("%s: n = %d, right-censored %d, left-censored %d (%.1f%%), exact %d, interval %d\n",
              name, nrow(d), sum(is.infinite(d$upper)), sum(d$lower == 0),
              100 * mean(d$lower == 0), sum(d$lower == d$upper),
              sum(d$lower > 0 & is.finite(d$upper) & d$lower < d$upper)))
}
describe(data_a, "a"); describe(data_b, "b")
stopifnot(mean(data_a$lower == 0) >= 0.10, sum(is.infinite(data_a$upper)) > 0,
          sum(data_b$lower == data_b$upper) > 0, sum(is.infinite(data_b$upper)) > 0,
          sum(data_b$lower == 0) > 0)

write_table(data.frame(lower = fmt_time(data_a$lower), upper = fmt_time(data_a$upper),
                       nerve = data_a$nerve, age = data_a$age, diabetes = data_a$diabetes),
            "aft_input_a.csv")
write_table(data.frame(lower = fmt_time(data_b$lower), upper = fmt_time(data_b$upper),
                       bmi = sprintf("%.1f", data_b$bmi), retreatment = data_b$retreatment),
            "aft_input_b.csv")

profiles_a <- data.frame(nerve = c("greater_occipital", "infrapatellar_saphenous", "intercostal"),
                         age = c(45, 60, 72), diabetes = c(0, 1, 0),
                         stringsAsFactors = FALSE)
profiles_b <- data.frame(bmi = c(22.5, 27, 34.2), retreatment = c(0, 1, 0))
write_table(rbind(
  data.frame(dataset = "a", profile = 1:3, profiles_a, bmi = NA, retreatment = NA),
  data.frame(dataset = "b", profile = 1:3, nerve = NA, age = NA, diabetes = NA, profiles_b)),
  "aft_profiles.csv")

# Fit what the CSVs hold, as parsed back from their text (so that bmi etc. are exactly the
# doubles a reader of the files gets).
read_back <- function(file) {
  d <- read.csv(file.path(out_dir, file), stringsAsFactors = FALSE, na.strings = "")
  for (v in c("lower", "upper")) d[[v]] <- as.numeric(ifelse(d[[v]] == "inf", Inf, d[[v]]))
  d
}
data_a <- read_back("aft_input_a.csv")
data_b <- read_back("aft_input_b.csv")
prof <- read.csv(file.path(out_dir, "aft_profiles.csv"), stringsAsFactors = FALSE,
                 na.strings = "")
profiles_a <- prof[prof$dataset == "a", c("nerve", "age", "diabetes")]
profiles_b <- prof[prof$dataset == "b", c("bmi", "retreatment")]

# R encoding: left-censored lower = NA, right-censored upper = NA
to_r <- function(d) {
  d$l <- ifelse(d$lower == 0, NA, d$lower)
  d$u <- ifelse(is.infinite(d$upper), NA, d$upper)
  d
}
ra <- to_r(data_a); rb <- to_r(data_b)

# lower = 0 is rejected by survreg for log-time distributions (documented above)
err <- tryCatch(survreg(Surv(lower, ifelse(is.infinite(upper), NA, upper),
                             type = "interval2") ~ age, data = data_a, dist = "weibull"),
                error = function(e) conditionMessage(e))
cat("survreg with lower = 0:", if (is.character(err)) err else "accepted (!)", "\n")
stopifnot(is.character(err))

ctrl <- survreg.control(rel.tolerance = 1e-12, maxiter = 200)
formulas <- list(a = Surv(l, u, type = "interval2") ~ nerve + age + diabetes,
                 b = Surv(l, u, type = "interval2") ~ bmi + retreatment)
datasets <- list(a = ra, b = rb)
profiles <- list(a = profiles_a, b = profiles_b)
dists <- c("weibull", "lognormal", "loglogistic")

# log-likelihood from the formulas in the header, for a check of fit$loglik
manual_loglik <- function(fit, d, dist, theta = NULL) {
  lp <- fit$linear.predictors; s <- fit$scale
  if (!is.null(theta)) {             # (coefficients, log scale)
    X <- model.matrix(delete.response(terms(fit)), d)
    lp <- drop(X %*% theta[seq_len(ncol(X))]); s <- exp(theta[ncol(X) + 1])
  }
  cdf <- switch(dist, weibull = function(z) 1 - exp(-exp(z)), lognormal = pnorm,
                loglogistic = plogis)
  pdf <- switch(dist, weibull = function(z) exp(z - exp(z)), lognormal = dnorm,
                loglogistic = dlogis)
  zl <- (log(d$lower) - lp) / s
  zu <- (log(d$upper) - lp) / s
  ll <- ifelse(d$lower == d$upper, log(pdf(zl) / (s * d$lower)),
         ifelse(d$lower == 0, log(cdf(zu)),
          ifelse(is.infinite(d$upper), log(1 - cdf(zl)), log(cdf(zu) - cdf(zl)))))
  sum(ll)
}

rows <- list()
add <- function(ds, dist, quantity, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = ds, dist = dist, quantity = quantity,
                                          term = term, value = fmt(value))
}
warn_log <- character()

for (ds in names(datasets)) {
  for (dist in dists) {
    fit <- withCallingHandlers(
      survreg(formulas[[ds]], data = datasets[[ds]], dist = dist, control = ctrl),
      warning = function(w) {
        warn_log <<- c(warn_log, sprintf("%s/%s: %s", ds, dist, conditionMessage(w)))
        invokeRestart("muffleWarning")
      })
    stopifnot(fit$iter < ctrl$maxiter)
    # convergence indicator: the same fit at a looser tolerance
    fit_loose <- survreg(formulas[[ds]], data = datasets[[ds]], dist = dist,
                         control = survreg.control(rel.tolerance = 1e-9, maxiter = 200))
    d_orig <- if (ds == "a") data_a else data_b
    ll_manual <- manual_loglik(fit, d_orig, dist)
    # distance to the optimum: one Newton step V %*% score, the score by central differences
    # (step scaled by the column's size: age runs to 90, so its third derivative is large)
    theta <- c(coef(fit), log(fit$scale))
    X <- model.matrix(delete.response(terms(fit)), d_orig)
    h <- 1e-5 / c(apply(abs(X), 2, max), 1)
    score <- sapply(seq_along(theta), function(j) {
      e <- replace(numeric(length(theta)), j, h[j])
      (manual_loglik(fit, d_orig, dist, theta + e) -
         manual_loglik(fit, d_orig, dist, theta - e)) / (2 * h[j])
    })
    newton <- max(abs(vcov(fit) %*% score))
    cat(sprintf("%s %-11s iter %2d  loglik %.10f  manual-R %.1e  |newton step| %.1e  |theta(tol 1e-9) - theta| %.1e\n",
                ds, dist, fit$iter, fit$loglik[2], ll_manual - fit$loglik[2], newton,
                max(abs(c(coef(fit_loose), log(fit_loose$scale)) - theta))))
    stopifnot(abs(ll_manual - fit$loglik[2]) < 1e-8, newton < 1e-8)

    V <- vcov(fit)
    cf <- coef(fit)
    for (k in names(cf)) add(ds, dist, "coef", k, cf[[k]])
    for (k in rownames(V)) add(ds, dist, "se", k, sqrt(V[k, k]))
    for (i in rownames(V)) for (j in colnames(V)) add(ds, dist, "vcov", paste0(i, "|", j), V[i, j])
    add(ds, dist, "log_scale", "Log(scale)", log(fit$scale))
    add(ds, dist, "scale", "", fit$scale)
    add(ds, dist, "loglik", "", fit$loglik[2])
    add(ds, dist, "loglik_null", "", fit$loglik[1])
    add(ds, dist, "n_iter", "", fit$iter)
    add(ds, dist, "n", "", nrow(datasets[[ds]]))
    add(ds, dist, "df", "", length(cf) + 1)

    nd <- profiles[[ds]]
    pp <- c(0.25, 0.5, 0.75)
    lp <- predict(fit, newdata = nd, type = "lp")
    q <- predict(fit, newdata = nd, type = "quantile", p = pp, se.fit = TRUE)
    uq <- predict(fit, newdata = nd, type = "uquantile", p = pp, se.fit = TRUE)
    stopifnot(max(abs(q$se.fit / (q$fit * uq$se.fit) - 1)) < 1e-12)
    for (k in seq_len(nrow(nd))) {
      add(ds, dist, "lp", paste0("profile", k), lp[k])
      for (m in seq_along(pp)) {
        term <- paste0("profile", k, ":p", pp[m])
        add(ds, dist, "quantile", term, q$fit[k, m])
        add(ds, dist, "quantile_se", term, q$se.fit[k, m])
        add(ds, dist, "uquantile", term, uq$fit[k, m])
        add(ds, dist, "uquantile_se", term, uq$se.fit[k, m])
      }
    }
  }
}
values <- do.call(rbind, rows)
write_table(values, "aft_values.csv")
cat("warnings:", if (length(warn_log)) paste(warn_log, collapse = "\n") else "none", "\n")
cat("wrote", nrow(values), "rows to aft_values.csv\n")
