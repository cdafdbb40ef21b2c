# Reference values for the Turnbull NPMLE (interval-censored survival curve), computed in R.
#
# Run from the repository root:   Rscript tests/reference/turnbull.R
# (the script finds its own folder, so any working directory works).
#
# Interval convention ----------------------------------------------------------------------
# Every observation is (lower, upper] in days: the event happened after `lower` and at or
# before `upper`.  upper = Inf: right-censored; lower = 0: left-censored; lower == upper:
# exact (a point mass at that day, i.e. [t, t]).
#
# R's documentation agrees.  ?Surv (survival 3.5-3), argument `time2`:
#   "ending time of the interval for interval censored or counting process data only.
#    Intervals are assumed to be open on the left and closed on the right, '(start, end]'."
# and, for type = "interval2": "(-infinity, t2) for left censored, (t1, infinity) for right
# censored, (t,t) for exact and (t1, t2) for an interval ... Infinite values can be
# represented either by actual infinity (Inf) or NA."
# (?Surv also says that for survreg and survfit "the distinction between open and closed
# intervals is unimportant"; for the Turnbull estimator it is NOT unimportant when one
# row's upper equals another row's lower.  The code of survival:::survfitTurnbull does use
# (l, u]: a jump time t counts for an interval row when  t > l & t <= u.)
#
# How the rows are passed to R ------------------------------------------------------------
# Surv(lower, upper, type = "interval2") with upper = NA for right-censored rows and
# lower = NA for left-censored rows (R's own left-censored code, status 2 = (-Inf, upper]).
# For survfit, lower = 0 (status 3, interval (0, upper]) gives the same likelihood, because
# every support interval lies above 0; the script checks that both encodings give the same
# curve (summary row `survfit_lower0_vs_NA_maxdiff`).  For survreg lower = 0 is NOT
# accepted (log(0) = -Inf: "Invalid survival times for this distribution"), see aft.R.
#
# Estimators -------------------------------------------------------------------------------
# 1. survival::survfit(Surv(...) ~ 1): R's Turnbull/EM estimator (survival:::survfitTurnbull).
#    It has NO control/tolerance argument: survfit.formula's only extra argument is
#    `timefix`, and survfitTurnbull hard-codes its stopping rule
#    (max |S_new - S_old| < 5e-5, checked only on some iterations, with Aitken acceleration).
#    Its curve is therefore only accurate to roughly 1e-4 and is written as the column
#    `survival_survfit`, for information.
# 2. The converged NPMLE (column `survival`, the reference), by two independent methods:
#      a. npsurv::npsurv (constrained Newton method, Wang 2008; Debian r-cran-npsurv), with
#         tol = 1e-14 on the log-likelihood increase;
#      b. a plain self-consistency EM (Turnbull 1976) over the Turnbull (innermost)
#         intervals, written below in base R, run until the masses change by < 1e-15.
#    The EM solution is then polished by Newton steps on its support (masses > 1e-9) and
#    must satisfy the KKT conditions (|gradient| < 1e-8 on the support, < 1e-8 off it);
#    the polished masses are the ones written.  npsurv, if installed, is only a cross-check
#    (the script stops if it differs from the EM by more than 1e-8 in any mass), so the
#    written values do not depend on whether it is installed.
#
# Outputs (in this folder) ---------------------------------------------------------------
#   turnbull_input.csv           lower, upper  (upper = inf for right-censored)
#   turnbull_values.csv          time, survival, survival_survfit: S(t) = P(T > t) at every
#                                distinct finite endpoint of the data (10 significant digits)
#   turnbull_support.csv         left, right, mass, mass_survfit: the Turnbull intervals
#                                (left, right] (left == right: point mass at that day;
#                                right = inf: mass beyond the last finite endpoint)
#   turnbull_summary.csv         dataset, quantity, value: log-likelihoods etc.
#   turnbull_tiny_*.csv          the same for a 6-row dataset whose NPMLE is known exactly.
#
# Tiny dataset (analytic NPMLE) ------------------------------------------------------------
#   rows: (0,10], (5,20], (10,20], (20,Inf], [30,30], (35,Inf]
#   Turnbull intervals: I1 = (5,10], I2 = (10,20], I3 = [30,30], I4 = (35,Inf), masses p1..p4.
#   (Note (0,10] and (10,20] share the endpoint 10 but do not overlap under (l,u].)
#   Likelihood L = p1 * (p1+p2) * p2 * (p3+p4) * p3 * p4.  For fixed s = p1+p2,
#   p1*p2 is largest at p1 = p2 = s/2; likewise p3 = p4 = (1-s)/2; then
#   log L = 3 log s + 3 log(1-s) + const, maximal at s = 1/2.  So
#   p = (1/4, 1/4, 1/4, 1/4), unique;  S(0) = S(5) = 1, S(10) = 3/4, S(20) = 1/2,
#   S(30) = 1/4, S(35) = 1/4  (and S(30-) = 1/2);
#   log L = 4 log(1/4) + 2 log(1/2) = -10 log 2 = -6.931471805599453.

suppressPackageStartupMessages(library(survival))

args_all <- commandArgs(trailingOnly = FALSE)
script_file <- sub("^--file=", "", args_all[grep("^--file=", args_all)])
out_dir <- if (length(script_file)) dirname(normalizePath(script_file)) else getwd()

cat(R.version.string, "\n")
cat("survival", as.character(packageVersion("survival")), "\n")
have_npsurv <- requireNamespace("npsurv", quietly = TRUE)
if (have_npsurv) cat("npsurv", as.character(packageVersion("npsurv")), "\n")

fmt <- function(x, digits) {
  out <- ifelse(is.na(x), "NA", ifelse(x > 0, "inf", "-inf"))
  ok <- is.finite(x)
  out[ok] <- trimws(formatC(x[ok], digits = digits, format = "g"))
  out
}
fmt_time <- function(x) {            # whole days, or inf
  stopifnot(all(x[is.finite(x)] == round(x[is.finite(x)])))
  out <- rep("inf", length(x))
  out[is.finite(x)] <- sprintf("%.0f", x[is.finite(x)])
  out
}

write_table <- function(df, file) {
  write.csv(df, file.path(out_dir, file), row.names = FALSE, quote = FALSE)
}

# ---------------------------------------------------------------------------------------
# Data: visit-schedule data, deterministic.
# ---------------------------------------------------------------------------------------
make_visit_data <- function() {
  set.seed(20240611)
  n <- 60
  schedule <- c(0, 7, 14, 30, 45, 60, 90, 120, 180)
  lower <- upper <- numeric(n)
  true_t <- rweibull(n, shape = 1.3, scale = 80)
  for (i in seq_len(n)) {
    # each follow-up visit attended with prob 0.75; follow-up ends at a random visit
    last_visit <- sample(4:9, 1, prob = c(0.10, 0.10, 0.15, 0.15, 0.20, 0.30))
    attended <- schedule[2:last_visit][runif(last_visit - 1) < 0.75]
    if (length(attended) == 0) attended <- schedule[2]
    t <- true_t[i]
    after <- attended[attended >= t]
    before <- c(0, attended[attended < t])
    lower[i] <- max(before)
    upper[i] <- if (length(after)) min(after) else Inf
  }
  # three rows with the day of the event known exactly (e.g. reported by phone)
  # (one on a visit day, 30, so that (14,30], [30,30] and (30,45] share the endpoint 30)
  exact_rows <- c(5, 17, 33)
  exact_day <- c(30, pmax(1, ceiling(true_t[exact_rows[-1]])))
  upper[exact_rows] <- lower[exact_rows] <- exact_day
  data.frame(lower = lower, upper = upper)
}

tiny_data <- data.frame(lower = c(0, 5, 10, 20, 30, 35),
                        upper = c(10, 20, 20, Inf, 30, Inf))

# ---------------------------------------------------------------------------------------
# Turnbull intervals and a self-consistency EM in base R.
# ---------------------------------------------------------------------------------------
turnbull_intervals <- function(lower, upper) {
  exact <- lower == upper
  # sort keys: at one value, the left end of an exact row ("t-") comes first, then right
  # ends (a row ending at t contains t), then left ends (a row starting at t excludes t).
  v <- c(lower, upper)
  kind <- c(ifelse(exact, 0L, 2L), rep(1L, length(upper)))   # 0 exact-left, 1 R, 2 L
  o <- order(v, kind)
  v <- v[o]; kind <- kind[o]
  is_left <- kind != 1L
  k <- which(is_left[-length(v)] & !is_left[-1])
  data.frame(left = v[k], right = v[k + 1], point = kind[k] == 0L)
}

membership <- function(lower, upper, ti) {
  A <- matrix(0, length(lower), nrow(ti))
  for (i in seq_along(lower)) {
    if (lower[i] == upper[i]) {
      A[i, ] <- ti$point & ti$left == lower[i]
    } else {
      A[i, ] <- ifelse(ti$point,
                       ti$left > lower[i] & ti$left <= upper[i],
                       ti$left >= lower[i] & ti$right <= upper[i])
    }
  }
  stopifnot(all(rowSums(A) > 0))
  A
}

em_npmle <- function(A, tol = 1e-15, maxit = 2e6) {
  n <- nrow(A); m <- ncol(A)
  p <- rep(1 / m, m)
  for (it in seq_len(maxit)) {
    denom <- as.vector(A %*% p)
    p_new <- p * colSums(A / denom) / n
    change <- max(abs(p_new - p))
    p <- p_new
    if (change < tol) break
  }
  denom <- as.vector(A %*% p)
  grad <- colSums(A / denom) - n        # KKT: <= 0 everywhere, = 0 where p > 0
  list(p = p, iter = it, maxgrad = max(grad), loglik = sum(log(denom)))
}

# Newton polish on the support of a (nearly) converged solution: maximise sum(log(A p))
# over p_S >= 0, sum(p_S) = 1 (the last support mass eliminated), then check the KKT
# conditions over all Turnbull intervals: gradient sum_i A_ij / (A p)_i - n is 0 on the
# support and <= 0 off it.
newton_polish <- function(A, p, support_tol = 1e-9) {
  n <- nrow(A)
  S <- which(p > support_tol)
  q <- p[S] / sum(p[S])
  As <- A[, S, drop = FALSE]
  m <- length(S)
  if (m > 1) {
    D <- As[, -m, drop = FALSE] - As[, m]          # d(A p)/d q_k, k < m
    for (it in 1:100) {
      denom <- as.vector(As %*% q)
      g <- colSums(D / denom)
      H <- -crossprod(D / denom)
      step <- -solve(H, g)
      # keep the masses positive
      full <- c(step, -sum(step))
      t <- 1
      while (any(q + t * full <= 0)) t <- t / 2
      q <- q + t * full
      if (max(abs(t * full)) < 1e-16) break
    }
  }
  p_new <- numeric(ncol(A)); p_new[S] <- q
  denom <- as.vector(A %*% p_new)
  grad <- colSums(A / denom) - n
  list(p = p_new, maxgrad_support = max(abs(grad[S])),
       maxgrad_off = if (length(S) < ncol(A)) max(grad[-S]) else -Inf,
       loglik = sum(log(denom)))
}

# S(t) = P(T > t) from masses on the Turnbull intervals; t must be a data endpoint, so no
# Turnbull interval has t strictly inside it.
surv_at <- function(t, ti, p) {
  sapply(t, function(s) sum(p[ifelse(ti$point, ti$left > s, ti$left >= s)]))
}

# step function of a survfit curve: S(t) (right-continuous) and S(t-)
sf_at <- function(fit, t, minus = FALSE) {
  sapply(t, function(s) {
    idx <- if (minus) which(fit$time < s) else which(fit$time <= s)
    if (length(idx)) fit$surv[max(idx)] else 1
  })
}

loglik_from_curve <- function(lower, upper, S, Sminus) {
  # S(x), Sminus(x) functions
  sum(ifelse(lower == upper, log(Sminus(lower) - S(lower)),
             log(S(lower) - ifelse(is.infinite(upper), 0, S(upper)))))
}

run_one <- function(d, tag) {
  lower <- d$lower; upper <- d$upper
  stopifnot(all(lower <= upper), all(lower >= 0))
  # R encodings: upper NA for right-censored; lower NA (or 0) for left-censored
  l_na <- ifelse(lower == 0, NA, lower)
  u_na <- ifelse(is.infinite(upper), NA, upper)
  fit <- survfit(Surv(l_na, u_na, type = "interval2") ~ 1)
  fit0 <- survfit(Surv(lower, u_na, type = "interval2") ~ 1)   # lower = 0 kept

  ti <- turnbull_intervals(lower, upper)
  A <- membership(lower, upper, ti)
  em <- em_npmle(A)
  p <- em$p
  summ <- list(n = length(lower), n_right_censored = sum(is.infinite(upper)),
               n_left_censored = sum(lower == 0), n_exact = sum(lower == upper),
               n_turnbull_intervals = nrow(ti),
               em_iterations = em$iter, em_max_gradient = em$maxgrad,
               loglik_em = em$loglik)
  if (have_npsurv) {
    np <- npsurv::npsurv(cbind(lower, upper), tol = 1e-14, maxit = 1000)
    stopifnot(np$convergence)
    # map npsurv's support onto the Turnbull intervals
    p_np <- numeric(nrow(ti))
    for (k in seq_along(np$f$p)) {
      j <- which(ti$left == np$f$left[k] & ti$right == np$f$right[k])
      stopifnot(length(j) == 1)
      p_np[j] <- np$f$p[k]
    }
    summ$npsurv_loglik <- np$ll
    summ$npsurv_max_gradient <- np$maxgrad
    summ$npsurv_vs_em_max_mass_diff <- max(abs(p_np - p))
    stopifnot(max(abs(p_np - p)) < 1e-8, abs(np$ll - em$loglik) < 1e-10)
  }
  pol <- newton_polish(A, p)
  stopifnot(pol$maxgrad_support < 1e-8, pol$maxgrad_off < 1e-8)
  summ$em_vs_polished_max_mass_diff <- max(abs(pol$p - p))
  if (have_npsurv) summ$npsurv_vs_polished_max_mass_diff <- max(abs(pol$p - p_np))
  summ$polished_max_abs_gradient_on_support <- pol$maxgrad_support
  summ$polished_max_gradient_off_support <- pol$maxgrad_off
  summ$n_support <- sum(pol$p > 0)
  p <- pol$p
  Sfun <- function(t) surv_at(t, ti, p)
  Sminus <- function(t) sapply(t, function(s)
    sum(p[ifelse(ti$point, ti$left >= s, ti$left >= s)]))
  summ$loglik <- loglik_from_curve(lower, upper, Sfun, Sminus)

  times <- sort(unique(c(lower, upper[is.finite(upper)])))
  s_sf <- sf_at(fit, times)
  summ$loglik_survfit <- loglik_from_curve(lower, upper, function(t) sf_at(fit, t),
                                           function(t) sf_at(fit, t, minus = TRUE))
  summ$survfit_max_abs_diff_from_npmle <- max(abs(s_sf - Sfun(times)))
  summ$survfit_lower0_vs_NA_maxdiff <- max(abs(sf_at(fit0, times) - s_sf))

  # survfit's masses: jumps of its curve, assigned to the Turnbull interval holding them
  jumps <- -diff(c(1, fit$surv))
  mass_sf <- numeric(nrow(ti)); stray <- 0
  for (k in seq_along(jumps)) {
    if (jumps[k] <= 0) next
    tk <- fit$time[k]
    j <- which(ifelse(ti$point, ti$left == tk, tk > ti$left & tk <= ti$right))
    if (length(j) == 1) mass_sf[j] <- mass_sf[j] + jumps[k] else stray <- stray + jumps[k]
  }
  mass_sf[nrow(ti)] <- mass_sf[nrow(ti)] + if (is.infinite(ti$right[nrow(ti)]))
    tail(fit$surv, 1) else 0
  summ$survfit_mass_outside_turnbull_intervals <- stray

  pre <- if (tag == "visit") "turnbull" else "turnbull_tiny"
  write_table(data.frame(lower = fmt_time(lower), upper = fmt_time(upper)),
              paste0(pre, "_input.csv"))
  write_table(data.frame(time = fmt_time(times), survival = fmt(Sfun(times), 10),
                         survival_survfit = fmt(s_sf, 10)),
              paste0(pre, "_values.csv"))
  write_table(data.frame(left = fmt_time(ti$left), right = fmt_time(ti$right),
                         mass = fmt(p, 10), mass_survfit = fmt(mass_sf, 10)),
              paste0(pre, "_support.csv"))
  data.frame(dataset = tag, quantity = names(summ),
             value = sapply(summ, function(x) fmt(x, 15)))
}

s1 <- run_one(make_visit_data(), "visit")
s2 <- run_one(tiny_data, "tiny")
# the analytic answer for the tiny data
tiny_ll <- as.numeric(s2$value[s2$quantity == "loglik"])
stopifnot(abs(tiny_ll + 10 * log(2)) < 1e-10)
summary_df <- rbind(s1, s2,
                    data.frame(dataset = "meta", quantity = c("R", "survival", "npsurv"),
                               value = c(gsub(",", "", R.version.string),
                                         as.character(packageVersion("survival")),
                                         if (have_npsurv) as.character(packageVersion("npsurv"))
                                         else "not installed")))
write_table(summary_df, "turnbull_summary.csv")
print(summary_df, row.names = FALSE)
