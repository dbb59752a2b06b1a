/* A <select data-autosubmit> sends its form as soon as another option is chosen (the admin's
   workspace switcher, the CRM page's status filter). In a file rather than an onchange=
   attribute, so the Content-Security-Policy needs no 'unsafe-inline' for scripts. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
  });
})();
